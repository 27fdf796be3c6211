using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>
/// Paired data sets as the command line names them, and their tokenization into paired token shards: the targets' shards as
/// <c>snce tokenize</c> writes them (tokens, latents, neighbor table: what the losses read) plus the sources' tokens and the
/// pairs' names (<see cref="TokenShards.SourceTokens"/>, <see cref="TokenShards.PairNames"/>).
/// </summary>
/// <remarks>
/// A spec is either <c>SOURCE:TARGET</c>, two built-in data sets whose images pair up by their <c>unified</c> attribute
/// (emoji: <c>emoji-twitter:emoji-google</c> and <c>emoji-google:emoji-twitter</c>; <see cref="ImagePairs.Match"/>), or a paired
/// folder DIR (<c>DIR/src</c> + <c>DIR/dst</c>, optional instructions.jsonl; <see cref="ImagePairs.LoadFolder"/>). An existing
/// folder wins over the two-name reading.
/// </remarks>
public static class PairedData
{
    /// <summary>What a spec may be, for messages and help.</summary>
    public const string Syntax = "SOURCE:TARGET (two data sets paired by their 'unified' code point: emoji-twitter:emoji-google or emoji-google:emoji-twitter), " +
        "EMOJI:skin-tone=TONE[,TONE...]|all (each emoji without a skin tone → its TONE variant, e.g. emoji-twitter:skin-tone=dark or emoji-twitter:skin-tone=medium,dark; " + ImagePairs.SkinTones + ") " +
        "or DIR (a paired folder: src/ and dst/ with matching file names, optional instructions.jsonl)";

    const string SkinTonePrefix = "skin-tone=";

    /// <summary>
    /// The canonical reference of a spec, as paired shards record it: <c>emoji-twitter:emoji-google</c> (names resolved) or the
    /// folder's absolute path. Throws naming <see cref="Syntax"/> when the spec is neither.
    /// </summary>
    public static string Reference(string spec)
    {
        if (Directory.Exists(spec)) return Path.GetFullPath(spec);
        var parts = spec.Split(':');
        if (parts.Length == 2 && BuiltInDataSets.IsBuiltInName(parts[0]) && parts[1].StartsWith(SkinTonePrefix, StringComparison.OrdinalIgnoreCase))
        {
            var tones = Tones(spec, parts[1][SkinTonePrefix.Length..]);
            var set = BuiltInDataSets.Resolve(parts[0], null);
            if (set is not EmojiDataSet) throw new ArgumentException($"--pairs {spec}: skin-tone pairs need emoji, not {set.Name}");
            return $"{set.Name}:{SkinTonePrefix}{string.Join(',', tones)}";
        }
        if (parts.Length == 2 && parts.All(BuiltInDataSets.IsBuiltInName))
        {
            var (source, target) = (BuiltInDataSets.Resolve(parts[0], null).Name, BuiltInDataSets.Resolve(parts[1], null).Name);
            if (source == target) throw new ArgumentException($"--pairs {spec} pairs {source} with itself; name two vendors, e.g. emoji-twitter:emoji-google");
            return $"{source}:{target}";
        }
        throw new ArgumentException($"--pairs '{spec}' is neither an existing folder nor two data sets; use {Syntax}");
    }

    /// <summary>
    /// Loads the pairs of <paramref name="spec"/> at the tokenizer's <paramref name="channels"/> and <paramref name="size"/>
    /// (<paramref name="options"/> supplies the data folder and fetching; its size, channels and limit are not used: a limit
    /// applies to pairs, <see cref="Limit"/>).
    /// </summary>
    public static ImagePairs Load(string spec, DataOptions options, int channels, int size, IProgress<DataProgress>? progress = null)
    {
        if (Directory.Exists(spec)) return ImagePairs.LoadFolder(spec, channels, size);
        var parts = Reference(spec).Split(':');
        var shape = options with { Size = size, Channels = channels, Limit = null, Vendor = null };
        if (parts[1].StartsWith(SkinTonePrefix, StringComparison.Ordinal))
        {
            using var emoji = DataSets.Load(parts[0], shape, progress: progress);
            return ImagePairs.SkinTone(emoji, parts[1][SkinTonePrefix.Length..].Split(','));
        }
        using var source = DataSets.Load(parts[0], shape, progress: progress);
        using var target = DataSets.Load(parts[1], shape, progress: progress);
        return ImagePairs.Match(source, target, instruction: ImagePairs.StyleInstruction(parts[1]));
    }

    /// <summary>
    /// The emoji vendor whose drawings the pairs of <paramref name="reference"/> (<see cref="Reference"/>'s form) translate into:
    /// the target side's vendor (<c>emoji-twitter:emoji-google</c> → google; skin-tone pairs stay with their one vendor); null for a
    /// folder or a data set that is not emoji.
    /// </summary>
    public static EmojiVendor? TargetVendor(string reference)
    {
        if (Directory.Exists(reference)) return null;
        var parts = reference.Split(':');
        if (parts.Length != 2) return null;
        var target = parts[1].StartsWith(SkinTonePrefix, StringComparison.Ordinal) ? parts[0] : parts[1];
        return BuiltInDataSets.IsBuiltInName(target) && BuiltInDataSets.Resolve(target, null) is EmojiDataSet e ? e.Vendor : null;
    }

    /// <summary>TONE, TONE,TONE,... or all → the tones in <see cref="ImagePairs.SkinTones"/>' order, each once; throws naming the bad one.</summary>
    static string[] Tones(string spec, string list)
    {
        var all = ImagePairs.SkinTones.Split(", ");
        if (list.Equals("all", StringComparison.OrdinalIgnoreCase)) return all;
        var given = list.ToLowerInvariant().Split(',', StringSplitOptions.TrimEntries);
        foreach (var tone in given)
            if (!all.Contains(tone)) throw new ArgumentException($"--pairs {spec}: unknown skin tone '{tone}'; use one of {ImagePairs.SkinTones}, several separated by commas, or all");
        return all.Where(given.Contains).ToArray();
    }

    /// <summary>The first <paramref name="perSplit"/> pairs of each split, in order (for quick runs); null keeps all.</summary>
    public static ImagePairs Limit(ImagePairs pairs, int? perSplit)
    {
        if (perSplit is not { } n) return pairs;
        if (n < 1) throw new ArgumentException($"--limit must be ≥ 1 (got {n})");
        var split = pairs.Split.data<byte>().ToArray();
        var seen = new int[2];
        var keep = Enumerable.Range(0, split.Length).Where(i => seen[split[i]]++ < n).ToArray();
        using var rows = tensor(keep.Select(i => (long)i).ToArray());
        var limited = new ImagePairs(pairs.Sources.index_select(0, rows), pairs.Targets.index_select(0, rows), keep.Select(i => pairs.Names[i]).ToArray(),
            keep.Select(i => pairs.Instructions[i]).ToArray(), pairs.Split.index_select(0, rows));
        pairs.Dispose();
        return limited;
    }

    /// <summary>
    /// Tokenizes both sides of every pair with <paramref name="model"/>: the targets as <see cref="DatasetTokenizer.Tokenize"/> does
    /// (with <paramref name="options"/>' latents and neighbor table), the sources' tokens only. The shards have no classes (labels −1)
    /// and record <paramref name="reference"/> (<see cref="Reference"/>) as their pairs.
    /// </summary>
    public static TokenizeResult Tokenize(VqTokenizer model, ImagePairs pairs, string tokenizerDir, TokenizeOptions options, string reference)
    {
        using var labels = full(pairs.Count, -1L);
        using var targets = new ImageDataset { Name = reference, Images = pairs.Targets.alias(), Labels = labels.alias(), Split = pairs.Split.alias(), Classes = [] };
        using var sources = new ImageDataset { Name = reference, Images = pairs.Sources.alias(), Labels = labels.alias(), Split = pairs.Split.alias(), Classes = [] };
        var target = DatasetTokenizer.Tokenize(model, targets, tokenizerDir, options, reference);
        TokenizeResult source;
        try { source = DatasetTokenizer.Tokenize(model, sources, tokenizerDir, new TokenizeOptions { NeighborsK = 0, BatchSize = options.BatchSize }, reference); }
        catch { target.Shards.Dispose(); throw; }
        using var t = target.Shards;
        using var s = source.Shards;
        var bytes = new Dictionary<string, long>(t.Info.BytesPerImage) { ["source_tokens"] = t.Info.SequenceLength * 4L };
        var shards = new TokenShards
        {
            Info = t.Info with { Pairs = reference, BytesPerImage = bytes },
            Tokens = t.Tokens.alias(), SourceTokens = s.Tokens.alias(), PairNames = pairs.Names,
            Labels = t.Labels.alias(), Split = t.Split.alias(), Codebook = t.Codebook.alias(),
            CodeNeighborIds = t.CodeNeighborIds?.alias(), CodeNeighborDist = t.CodeNeighborDist?.alias(), Latents = t.Latents?.alias(),
            LatentNeighborIds = t.LatentNeighborIds?.alias(), LatentNeighborDist = t.LatentNeighborDist?.alias(),
        };
        var seconds = target.Seconds + source.Seconds;
        return new TokenizeResult(shards, seconds, 2.0 * pairs.Count * t.Info.SequenceLength / Math.Max(1e-9, seconds), target.FixedBytes);
    }
}
