using System.Text.Json;
using Snce.Data;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>
/// Paired images for image-to-image training and evaluation (translation, instruction edits): row i's source, its target,
/// a name and an optional instruction. <paramref name="Sources"/> and <paramref name="Targets"/> are uint8 [M, C, S, S];
/// <paramref name="Split"/> uint8 [M] (<see cref="ImageDataset.TrainSplit"/> / <see cref="ImageDataset.ValidationSplit"/>).
/// </summary>
public sealed record ImagePairs(Tensor Sources, Tensor Targets, string[] Names, string?[] Instructions, Tensor Split) : IDisposable
{
    /// <summary>The file an image-pair folder may hold next to src/ and dst/: one JSON object per line, {"name": ..., "instruction": ...}.</summary>
    public const string InstructionsFile = "instructions.jsonl";

    /// <summary>Pairs.</summary>
    public int Count => Names.Length;

    /// <summary>
    /// The rows of two data sets that share the value of <paramref name="attribute"/> (emoji: <c>unified</c>, the code point
    /// sequence, equal across vendors), in the source's order; rows of either side without a partner are left out. The split is
    /// the source's (emoji splits are keyed by the base code point, so both vendors hold out the same emoji). Every pair gets
    /// <paramref name="instruction"/> (e.g. "in google style"), or none.
    /// </summary>
    public static ImagePairs Match(ImageDataset source, ImageDataset target, string attribute = "unified", string? instruction = null)
    {
        string[] Values(ImageDataset d) => d.Attributes.TryGetValue(attribute, out var v) ? v
            : throw new ArgumentException($"{d.Name} has no '{attribute}' attribute to pair images by (it has: {string.Join(", ", d.Attributes.Keys)})");
        if (source.Channels != target.Channels || source.Size != target.Size)
            throw new ArgumentException($"{source.Name} has {source.Channels}-channel {source.Size}-px images, {target.Name} {target.Channels}-channel {target.Size}-px; load both at one --size and --channels");
        var (sv, tv) = (Values(source), Values(target));
        var targetRow = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < tv.Length; i++) targetRow.TryAdd(tv[i], i);
        var rows = Enumerable.Range(0, sv.Length).Where(i => targetRow.ContainsKey(sv[i])).ToArray();
        if (rows.Length == 0) throw new ArgumentException($"no '{attribute}' value is shared by {source.Name} and {target.Name}: nothing to pair");
        using var s = tensor(rows.Select(i => (long)i).ToArray());
        using var t = tensor(rows.Select(i => targetRow[sv[i]]).ToArray());
        return new ImagePairs(source.Images.index_select(0, s), target.Images.index_select(0, t), rows.Select(i => sv[i]).ToArray(),
            rows.Select(_ => instruction).ToArray(), source.Split.index_select(0, s));
    }

    /// <summary>The skin tones emoji data sets name in their <c>skin_tone</c> attribute (a base emoji has "none").</summary>
    public const string SkinTones = "light, medium-light, medium, medium-dark, dark";

    /// <summary>
    /// Skin-tone edits with exact ground truth from emoji metadata: each emoji drawn without a skin tone (<c>skin_tone</c> = none)
    /// paired with its variant of one <paramref name="tone"/> (the row with the same <c>base_unified</c>), in the data set's order, with
    /// its split (both share the base code point, so the split keeps them together) and the instruction "make the skin tone TONE".
    /// </summary>
    public static ImagePairs SkinTone(ImageDataset emoji, string tone) => SkinTone(emoji, [tone]);

    /// <summary>
    /// Skin-tone edits of several tones in one set (one model, several instructions): for each emoji drawn without a skin tone, in the
    /// data set's order, one pair per tone of <paramref name="tones"/> it has a variant of, with the instruction "make the skin tone TONE".
    /// A pair is named by the base code point (one tone) or BASE:TONE (several), so names stay unique.
    /// </summary>
    public static ImagePairs SkinTone(ImageDataset emoji, IReadOnlyList<string> tones)
    {
        string[] Values(string attribute) => emoji.Attributes.TryGetValue(attribute, out var v) ? v
            : throw new ArgumentException($"{emoji.Name} has no '{attribute}' attribute; skin-tone pairs need emoji data (base_unified and skin_tone)");
        var (bases, drawn) = (Values("base_unified"), Values("skin_tone"));
        if (tones.Count == 0) throw new ArgumentException($"name at least one skin tone: {SkinTones}");
        foreach (var tone in tones)
            if (!SkinTones.Split(", ").Contains(tone)) throw new ArgumentException($"unknown skin tone '{tone}'; use one of {SkinTones}");
        if (tones.Distinct().Count() != tones.Count) throw new ArgumentException($"skin tones [{string.Join(", ", tones)}] name a tone twice");
        var variant = tones.ToDictionary(t => t, _ => new Dictionary<string, long>(StringComparer.Ordinal));
        for (var i = 0; i < drawn.Length; i++) if (variant.TryGetValue(drawn[i], out var v)) v.TryAdd(bases[i], i);
        var rows = Enumerable.Range(0, bases.Length).Where(i => drawn[i] == "none")
            .SelectMany(i => tones.Where(t => variant[t].ContainsKey(bases[i])).Select(t => (Source: i, Tone: t))).ToArray();
        if (rows.Length == 0) throw new ArgumentException($"{emoji.Name} has no emoji drawn both without a skin tone and with the skin tone '{string.Join("' or '", tones)}'");
        using var s = tensor(rows.Select(r => (long)r.Source).ToArray());
        using var t = tensor(rows.Select(r => variant[r.Tone][bases[r.Source]]).ToArray());
        return new ImagePairs(emoji.Images.index_select(0, s), emoji.Images.index_select(0, t),
            rows.Select(r => tones.Count == 1 ? bases[r.Source] : $"{bases[r.Source]}:{r.Tone}").ToArray(),
            rows.Select(r => (string?)SkinToneInstruction(r.Tone)).ToArray(), emoji.Split.index_select(0, s));
    }

    /// <summary>The instruction of a skin-tone pair: "make the skin tone TONE" (TONE with spaces: "medium dark").</summary>
    public static string SkinToneInstruction(string tone) => $"make the skin tone {tone.Replace('-', ' ')}";

    /// <summary>The instruction of a vendor pair whose target is <paramref name="targetName"/> (emoji-google → "in google style").</summary>
    public static string StyleInstruction(string targetName) => $"in {(targetName.StartsWith("emoji-", StringComparison.Ordinal) ? targetName["emoji-".Length..] : targetName)} style";

    /// <summary>
    /// Reads a paired image folder: <c>DIR/src/NAME</c> and <c>DIR/dst/NAME</c> with matching file names (PNG, JPEG, ...), and
    /// optionally <c>DIR/instructions.jsonl</c>. Images are converted to <paramref name="channels"/> and center-cropped and resized
    /// to <paramref name="size"/> as every loader does (<see cref="RawImage.To"/>). The split is keyed by the name
    /// (<see cref="DataSplit"/>, seed 0, 10% held out), so adding pairs never moves the others. Every problem is an error naming
    /// the file: a missing side, a name without its partner, an unreadable image, an instruction for no pair, a bad JSON line.
    /// </summary>
    public static ImagePairs LoadFolder(string dir, int channels, int size)
    {
        var root = Path.GetFullPath(dir);
        var (srcDir, dstDir) = (Path.Combine(root, "src"), Path.Combine(root, "dst"));
        foreach (var d in new[] { srcDir, dstDir })
            if (!Directory.Exists(d)) throw new DirectoryNotFoundException($"a paired image folder needs {d} (src/ and dst/ with matching file names)");
        var src = Directory.GetFiles(srcDir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        var dst = Directory.GetFiles(dstDir).Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var lonely = src.Where(n => !dst.Contains(n)).Select(n => $"src/{n}").Concat(dst.Where(n => !src.Contains(n)).Order(StringComparer.Ordinal).Select(n => $"dst/{n}")).ToList();
        if (lonely.Count > 0)
            throw new InvalidDataException($"{root}: {lonely.Count} file(s) have no partner of the same name on the other side, e.g. {string.Join(", ", lonely.Take(3))}");
        if (src.Length == 0) throw new InvalidDataException($"{root}: src/ and dst/ hold no images");
        var instructions = ReadInstructions(Path.Combine(root, InstructionsFile), src.ToHashSet(StringComparer.Ordinal));
        var chw = channels * size * size;
        var (a, b) = (new byte[src.Length * chw], new byte[src.Length * chw]);
        for (var i = 0; i < src.Length; i++)
        {
            ImageFiles.Read(Path.Combine(srcDir, src[i])).To(channels, size).CopyPlanarTo(a.AsSpan(i * chw, chw));
            ImageFiles.Read(Path.Combine(dstDir, src[i])).To(channels, size).CopyPlanarTo(b.AsSpan(i * chw, chw));
        }
        var split = DataSplit.Assign(src, DataSplit.DefaultValidationFraction, DataSplit.DefaultSeed);
        return new ImagePairs(tensor(a, [src.Length, channels, size, size], ScalarType.Byte), tensor(b, [src.Length, channels, size, size], ScalarType.Byte),
            src, src.Select(n => instructions.GetValueOrDefault(n)).ToArray(), tensor(split, ScalarType.Byte));
    }

    /// <summary>instructions.jsonl → name → instruction (empty when the file is absent).</summary>
    static Dictionary<string, string?> ReadInstructions(string path, HashSet<string> names)
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (!File.Exists(path)) return result;
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string? name, text;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path}:{lineNo}: a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object; each line is {{\"name\": \"FILE\", \"instruction\": \"TEXT\"}}");
                name = doc.RootElement.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                text = doc.RootElement.TryGetProperty("instruction", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not a JSON object ({e.Message}); each line is {{\"name\": \"FILE\", \"instruction\": \"TEXT\"}}");
            }
            if (name is null || text is null)
                throw new InvalidDataException($"{path}:{lineNo}: needs a string \"name\" and a string \"instruction\" (missing: {(name is null ? "name" : "instruction")})");
            if (string.IsNullOrWhiteSpace(text)) throw new InvalidDataException($"{path}:{lineNo}: the instruction for '{name}' is empty; write what the edit does, e.g. \"make the sky red\"");
            if (!names.Contains(name)) throw new InvalidDataException($"{path}:{lineNo}: no pair named '{name}' in src/ and dst/");
            if (!result.TryAdd(name, text)) throw new InvalidDataException($"{path}:{lineNo}: a second instruction for '{name}'");
        }
        return result;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Sources.Dispose(); Targets.Dispose(); Split.Dispose();
    }
}
