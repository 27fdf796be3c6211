using System.Text.Json;
using Snce.Data;
using static TorchSharp.torch;

namespace Snce.Text;

/// <summary>
/// A folder of images with captions, the format users bring: <c>DIR/*.png|jpg</c> (any depth) and <c>DIR/captions.jsonl</c>,
/// one JSON object per line, <c>{"file": "cat.png", "caption": "a cat on a sofa"}</c>, file relative to DIR. A file may
/// have several lines (several captions); images without a line are left out and listed as skipped. Blank lines are
/// ignored. A malformed line, a missing file, a file outside DIR or an empty caption fails naming the line number.
/// </summary>
public static class CaptionFile
{
    /// <summary>The captions file name.</summary>
    public const string FileName = "captions.jsonl";
    /// <summary>The image attribute that holds an image's captions, separated by <see cref="Separator"/>.</summary>
    public const string Attribute = "captions";
    /// <summary>Separates the captions of one image inside <see cref="Attribute"/>.</summary>
    public const char Separator = '\n';

    sealed record Line(string? File, string? Caption);

    /// <summary>True when <paramref name="dir"/> holds a captions.jsonl.</summary>
    public static bool IsCaptioned(string dir) => File.Exists(Path.Combine(dir, FileName));

    /// <summary>(file relative to DIR, caption) per line, in file order; throws naming the line.</summary>
    public static IReadOnlyList<(string File, string Caption)> Read(string dir)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        var inside = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        var path = Path.Combine(root, FileName);
        var result = new List<(string, string)>();
        var lineNo = 0;
        foreach (var text in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            string Where() => $"{path}, line {lineNo}";
            Line? line;
            try { line = JsonSerializer.Deserialize<Line>(text, new JsonSerializerOptions { PropertyNameCaseInsensitive = true }); }
            catch (JsonException e) { throw new InvalidDataException($"{Where()}: not a JSON object ({e.Message.Split(". Path")[0]}); each line must be {{\"file\": \"NAME.png\", \"caption\": \"...\"}}"); }
            if (line?.File is not { Length: > 0 } file)
                throw new InvalidDataException($"{Where()}: no \"file\"; each line must be {{\"file\": \"NAME.png\", \"caption\": \"...\"}}");
            if (string.IsNullOrWhiteSpace(line.Caption))
                throw new InvalidDataException($"{Where()}: the caption of '{file}' is missing or empty");
            if (file.Contains('\0') || Path.IsPathRooted(file))
                throw new InvalidDataException($"{Where()}: '{file.Replace("\0", "\\0")}' is not a file name relative to the folder");
            var full = Path.GetFullPath(Path.Combine(root, file));
            if (!full.StartsWith(inside, StringComparison.Ordinal))
                throw new InvalidDataException($"{Where()}: '{file}' points outside {root}; each \"file\" names an image inside the folder");
            if (!File.Exists(full))
                throw new FileNotFoundException($"{Where()}: the image '{file}' does not exist (looked for {full})", full);
            result.Add((Path.GetRelativePath(root, full).Replace('\\', '/'), line.Caption.Replace('\n', ' ').Replace('\r', ' ').Trim()));
        }
        if (result.Count == 0) throw new InvalidDataException($"{path} has no captions");
        return result;
    }

    /// <summary>
    /// Loads the captioned images (no class labels), sized and split like an image folder: keyed by file, so adding
    /// images never moves the others between train and validation.
    /// </summary>
    public static ImageDataset Load(string dir, DataOptions options)
    {
        var root = Path.GetFullPath(dir);
        var lines = Read(root);
        var files = lines.Select(l => l.File).Distinct().ToArray();
        var captions = files.ToDictionary(f => f, _ => new List<string>());
        foreach (var (f, c) in lines) captions[f].Add(c);
        var raw = files.Select(f => ImageFiles.Read(Path.Combine(root, f))).ToArray();
        var size = options.Size ?? (raw.Select(r => (r.Width, r.Height)).Distinct().Count() == 1
            ? Math.Min(raw[0].Width, raw[0].Height)
            : throw new ArgumentException($"the images in {root} come in several sizes; pass --size N to crop and resize them all to N×N"));
        var channels = options.Channels ?? (raw.Any(r => r.Channels >= 3) ? 3 : 1);
        var plane = channels * size * size;
        var pixels = new byte[files.Length * plane];
        Parallel.For(0, files.Length, i => raw[i].To(channels, size).CopyPlanarTo(pixels.AsSpan(i * plane, plane)));
        var attributes = new Dictionary<string, string[]>
        {
            ["file"] = files,
            [Attribute] = [.. files.Select(f => string.Join(Separator, captions[f]))],
        };
        var labels = new long[files.Length];
        Array.Fill(labels, -1);
        var split = DataSplit.Assign(files, options.ValidationFraction ?? DataSplit.DefaultValidationFraction, options.Seed ?? DataSplit.DefaultSeed);
        return new ImageDataset
        {
            Name = root,
            Images = tensor(pixels, [files.Length, channels, size, size], ScalarType.Byte).DetachFromDisposeScope(),
            Labels = tensor(labels, [files.Length], ScalarType.Int64).DetachFromDisposeScope(),
            Split = tensor(split, [files.Length], ScalarType.Byte).DetachFromDisposeScope(),
            Classes = [],
            Attributes = attributes,
        };
    }
}
