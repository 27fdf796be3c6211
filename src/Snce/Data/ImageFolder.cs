using Snce.Data.BuiltIn;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>
/// A folder of images with one subfolder per class (<c>DIR/CLASS/**/*.png|jpg</c>; classes = subfolder names, sorted
/// ordinally). Every image becomes the configured size and channels: alpha composited onto white, center square
/// crop, resize (area when shrinking, bilinear when enlarging; see <see cref="RawImage.CenterCropResize"/>).
/// Files that do not decode, and files outside a class folder, are skipped and listed in <see cref="ImageDataset.Skipped"/>.
/// The folder is decoded on every load (no cache): a few thousand small images take about a second.
/// </summary>
public static class ImageFolder
{
    static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg"];

    sealed record Candidate(string Path, string Relative, int Class);

    /// <summary>Decodes every image of the folder <paramref name="dir"/> into a data set at the size and channels of <paramref name="options"/>, split by its seed.</summary>
    public static ImageDataset Load(string dir, DataOptions options, IProgress<DataProgress>? progress = null)

    {
        var root = System.IO.Path.GetFullPath(dir);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"no such image folder: {root}");
        var skipped = new List<SkippedFile>();
        foreach (var f in Directory.GetFiles(root).Order(StringComparer.Ordinal))
            skipped.Add(new(f, "not in a class subfolder (put images in DIR/CLASS/)"));

        var classDirs = Directory.GetDirectories(root).Order(StringComparer.Ordinal).ToArray();
        var candidates = new List<Candidate>();
        for (var c = 0; c < classDirs.Length; c++)
            foreach (var f in Directory.GetFiles(classDirs[c], "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                candidates.Add(new(f, System.IO.Path.GetRelativePath(root, f).Replace('\\', '/'), c));

        // Pass 1: headers only, to reject non-images early and to find the native size and channels.
        var probes = candidates.Select(c => ImageFiles.Probe(c.Path)).ToArray();
        for (var i = 0; i < candidates.Count; i++)
            if (probes[i] is null) skipped.Add(new(candidates[i].Path, Reason(candidates[i].Path, "no image header")));
            else if ((long)probes[i]!.Value.Width * probes[i]!.Value.Height > ImageFiles.MaxPixels)
            {
                var (w, h, _) = probes[i]!.Value;
                skipped.Add(new(candidates[i].Path, $"image too large ({w}×{h} > the limit of {ImageFiles.MaxPixels:N0} pixels, 8192×8192)"));
                probes[i] = null;
            }
        var readable = Enumerable.Range(0, candidates.Count).Where(i => probes[i] is not null).ToArray();
        if (readable.Length == 0)
            throw new InvalidDataException($"{root} has no images in class subfolders (expected {root}/CLASS/*.png or *.jpg" +
                (skipped.Count > 0 ? $"; skipped {skipped.Count} file(s) that are not images or not in a class folder, e.g. {skipped[0].Path}" : "") + ")");
        var size = options.Size ?? NativeSize(root, readable.Select(i => probes[i]!.Value).ToArray());
        var channels = options.Channels ?? (readable.Any(i => !probes[i]!.Value.Gray) ? 3 : 1);

        // Pass 2: decode, composite, crop, resize.
        var pixels = new byte[readable.Length][];
        var errors = new string?[readable.Length];
        var done = 0L;
        Parallel.For(0, readable.Length, j =>
        {
            var cand = candidates[readable[j]];
            try
            {
                var img = ImageFiles.Read(cand.Path).To(channels, size);
                pixels[j] = new byte[img.Pixels.Length];
                img.CopyPlanarTo(pixels[j]);
            }
            catch (InvalidDataException e)
            {
                var detail = e.Message.StartsWith(cand.Path + ": ", StringComparison.Ordinal) ? e.Message[(cand.Path.Length + 2)..] : e.Message;
                errors[j] = Reason(cand.Path, detail);
            }
            var n = Interlocked.Increment(ref done);
            if (n % 64 == 0 || n == readable.Length) progress?.Report(new DataProgress("decode", n, readable.Length));
        });
        var good = new List<int>();
        for (var j = 0; j < readable.Length; j++)
            if (errors[j] is { } reason) skipped.Add(new(candidates[readable[j]].Path, reason));
            else good.Add(j);

        var usedClasses = good.Select(j => candidates[readable[j]].Class).Distinct().Order().ToArray();
        foreach (var c in Enumerable.Range(0, classDirs.Length).Except(usedClasses))
            skipped.Add(new(classDirs[c], "class folder with no readable images (left out of the classes)"));
        if (good.Count == 0)
            throw new InvalidDataException($"{root}: none of its {readable.Length} image file(s) could be decoded, e.g. {skipped.Last().Path}: {skipped.Last().Reason}");

        var count = good.Count;
        var planeSize = channels * size * size;
        var images = new byte[count * planeSize];
        var labels = new long[count];
        var files = new string[count];
        for (var k = 0; k < count; k++)
        {
            var cand = candidates[readable[good[k]]];
            pixels[good[k]].CopyTo(images, k * planeSize);
            labels[k] = Array.IndexOf(usedClasses, cand.Class);
            files[k] = cand.Relative;
        }
        var attributes = new Dictionary<string, string[]> { ["file"] = files };
        var split = DataSplit.Assign(DataSplit.Keys(DataSplit.AttributeKey("file"), labels, attributes),
            options.ValidationFraction ?? DataSplit.DefaultValidationFraction, options.Seed ?? DataSplit.DefaultSeed);
        return new ImageDataset
        {
            Name = root,
            Images = tensor(images, [count, channels, size, size], ScalarType.Byte).DetachFromDisposeScope(),
            Labels = tensor(labels, [count], ScalarType.Int64).DetachFromDisposeScope(),
            Split = tensor(split, [count], ScalarType.Byte).DetachFromDisposeScope(),
            Classes = [.. usedClasses.Select(c => System.IO.Path.GetFileName(classDirs[c]))],
            Attributes = attributes,
            Skipped = skipped,
        };
    }

    static string Reason(string path, string detail) =>
        ImageExtensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant())
            ? $"corrupt image ({detail})"
            : "not an image";

    /// <summary>Without --size: the images' common smaller side when they all share one size.</summary>
    static int NativeSize(string root, (int Width, int Height, bool Gray)[] sizes)
    {
        var distinct = sizes.Select(s => (s.Width, s.Height)).Distinct().ToArray();
        if (distinct.Length == 1) return Math.Min(distinct[0].Width, distinct[0].Height);
        throw new ArgumentException(
            $"the images in {root} come in {distinct.Length} sizes ({string.Join(", ", distinct.Take(4).Select(d => $"{d.Width}×{d.Height}"))}" +
            $"{(distinct.Length > 4 ? ", ..." : "")}); pass --size N to crop and resize them all to N×N");
    }
}
