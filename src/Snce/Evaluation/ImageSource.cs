using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// Where generated images come from, as a function: <paramref name="count"/> images of class
/// <paramref name="classId"/> (null: unconditional) drawn with <paramref name="generator"/>, as uint8 [count, C, H, W].
/// A generator checkpoint plus its tokenizer's decoder is one (sample tokens, decode, map to 0..255).
/// </summary>
public delegate Tensor ImageSource(int count, long? classId, Generator generator);

/// <summary>Draws evaluation sets from an <see cref="ImageSource"/>.</summary>
public static class ImageSampling
{
    /// <summary>
    /// <paramref name="n"/> images spread evenly over <paramref name="classes"/> classes (class i gets ⌊n/classes⌋,
    /// the first n mod classes classes one more), in batches of at most <paramref name="batch"/>. Returns the
    /// images (uint8 [n, C, H, W], CPU) and their conditioning labels (int64 [n]). classes = 0: unconditional, labels null.
    /// </summary>
    public static (Tensor Images, Tensor? Labels) Draw(ImageSource source, int n, int classes, int batch, Generator generator, IProgress<int>? progress = null)
    {
        if (n < 1) throw new ArgumentException($"n must be at least 1; got {n}");
        if (batch < 1) throw new ArgumentException($"batch must be at least 1; got {batch}");
        var parts = new List<Tensor>();
        var labels = new List<long>();
        var done = 0;
        try
        {
            foreach (var (classId, count) in Plan(n, classes))
                for (var start = 0; start < count; start += batch)
                {
                    var m = Math.Min(batch, count - start);
                    using var scope = NewDisposeScope();
                    var images = source(m, classId, generator);
                    if (images.dtype != ScalarType.Byte || images.dim() != 4 || images.shape[0] != m)
                        throw new InvalidDataException($"the image source returned {images.dtype} [{string.Join(", ", images.shape)}] for {m} images; expected uint8 [{m}, C, H, W]");
                    parts.Add(images.cpu().MoveToOuterDisposeScope());
                    if (classId is { } id) labels.AddRange(Enumerable.Repeat(id, m));
                    done += m;
                    progress?.Report(done);
                }
            return (cat(parts, 0), classes > 0 ? tensor(labels.ToArray(), ScalarType.Int64) : null);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    static IEnumerable<(long? ClassId, int Count)> Plan(int n, int classes)
    {
        if (classes <= 0)
        {
            yield return (null, n);
            yield break;
        }
        for (var c = 0; c < classes; c++)
        {
            var count = n / classes + (c < n % classes ? 1 : 0);
            if (count > 0) yield return (c, count);
        }
    }
}
