using Snce.Data;
using Snce.Editing;
using Snce.Sampling;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// An inpainting evaluation set: <c>N</c> validation images of a data set spread evenly over the split (<see cref="InpaintingEvaluation.Rows"/>), each edited once in the same region,
/// conditioned on its own class. <paramref name="Edited"/> uint8 [N, C, H, W] and <paramref name="Labels"/> (int64 [N], the
/// sources' classes, null for an unconditional generator) go on to FD-ResNet18 and the classifier: class accuracy on them is
/// classifier consistency (the edited image keeps its class).
/// </summary>
public sealed record InpaintingEvaluationSet(InpaintingScores Scores, Tensor Edited, Tensor? Labels, PixelMask Pixels, TokenMask Tokens);

/// <summary>Inpaints a data set's validation images with a generator run and scores the region.</summary>
public static class InpaintingEvaluation
{
    /// <summary>
    /// The rows an evaluation of <paramref name="n"/> images edits: validation rows ⌊i·V/n⌋ for i = 0 … n − 1 of the V in the
    /// split, in stored order. Spread over the whole split rather than its first n, because data sets are stored class by
    /// class (Fashion-MNIST here, emoji by category): the first 1,000 of 6,949 Fashion-MNIST validation images are two
    /// classes, and their FD against the whole validation split measured the class mix, not the edits (211 on an H200 run of
    /// 2026-12-04, where sampling from the same run scored 68). Deterministic, so every run and loss edits the same images.
    /// </summary>
    public static Tensor Rows(ImageDataset real, int n)
    {
        using var rows = real.IndicesOf(ImageDataset.ValidationSplit);
        var total = rows.shape[0];
        if (n < 1) throw new ArgumentException($"--n must be at least 1; got {n}");
        if (total < n) throw new ArgumentException($"{real.Name} has {total} validation images; --n {n} asks for more");
        using var picks = tensor(Spread(total, n));
        return rows.index_select(0, picks);
    }

    /// <summary>Positions ⌊i·<paramref name="total"/>/<paramref name="n"/>⌋ for i = 0 … n − 1: n of total, in order, spread evenly (n ≤ total).</summary>
    public static long[] Spread(long total, int n) => Enumerable.Range(0, n).Select(i => (long)((double)i * total / n)).ToArray();

    /// <summary>
    /// Edits <paramref name="n"/> validation images of <paramref name="real"/> (the <see cref="Rows"/>; the first eight are the grid's) (it must have the tokenizer's size and
    /// channels) in <paramref name="region"/>, <paramref name="options"/>.BatchSize at a time, and scores them against the originals.
    /// </summary>
    public static InpaintingEvaluationSet Run(CheckpointEditor editor, ImageDataset real, EditRegion region, int n,
        GeneratorSamplingOptions options, Generator generator, IProgress<int>? progress = null)
    {
        var tc = editor.Tokenizer.Config;
        if (real.Channels != tc.Channels || real.Size != tc.ImageSize)
            throw new ArgumentException($"{real.Name} has {real.Channels}-channel {real.Size}x{real.Size} images but the tokenizer takes {tc.Channels}-channel {tc.ImageSize}x{tc.ImageSize}; load the data with --size {tc.ImageSize} --channels {tc.Channels}");
        var pixels = region.ToPixels(tc.ImageSize, tc.ImageSize);
        var tokens = editor.Footprint.ToTokens(pixels).RequireEdit();
        using var scope = NewDisposeScope();
        var rows = Rows(real, n);
        var originals = real.Images.index_select(0, rows);
        var classes = editor.Model.Config.NumClasses;
        Tensor? labels = null;
        if (classes > 0)
        {
            labels = real.Labels.index_select(0, rows);
            if (labels.min().item<long>() < 0 || labels.max().item<long>() >= classes)
                throw new ArgumentException($"the validation images of {real.Name} have classes outside the generator's 0..{classes - 1} (or none): inpaint the data set the run was trained on");
        }
        var conditions = labels ?? full([n], -1L, ScalarType.Int64);
        var parts = new List<InpaintingResult>();
        try
        {
            for (var start = 0; start < n; start += options.BatchSize)
            {
                var m = Math.Min(options.BatchSize, n - start);
                parts.Add(editor.Inpaint(originals.narrow(0, start, m), tokens, conditions.narrow(0, start, m), options, generator));
                progress?.Report(start + m);
            }
            using var all = new InpaintingResult(cat(parts.Select(p => p.SourceTokens).ToArray(), 0), cat(parts.Select(p => p.Tokens).ToArray(), 0),
                cat(parts.Select(p => p.Images).ToArray(), 0), cat(parts.Select(p => p.Reconstructions).ToArray(), 0), tokens);
            var scores = InpaintingQuality.Score(all, originals, pixels);
            return new InpaintingEvaluationSet(scores, all.Images.clone().MoveToOuterDisposeScope(), labels?.MoveToOuterDisposeScope(), pixels, tokens);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }
}
