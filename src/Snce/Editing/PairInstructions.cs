using Snce.Text;

namespace Snce.Editing;

/// <summary>
/// The instructions of paired data as caption shards: each pair's instruction is its one training caption, so paired shards made
/// with <c>snce tokenize --pairs ... --text</c> hold them exactly as captioned shards hold captions (captions.json, text_*.npy:
/// <see cref="CaptionShards"/>) and training reads them through the same <see cref="TextConditions"/>.
/// </summary>
public static class PairInstructions
{
    /// <summary>What <see cref="CaptionShardsInfo.Source"/> says for instructions.</summary>
    public const string Source = "instructions";

    /// <summary>
    /// One training caption per pair, its instruction (no held-out phrasings). Throws naming the pairs without one and the fix:
    /// built-in pairs always carry theirs; a folder needs a line in instructions.jsonl for every pair.
    /// </summary>
    public static CaptionSet Of(ImagePairs pairs, string reference)
    {
        var missing = Enumerable.Range(0, pairs.Count).Where(i => string.IsNullOrWhiteSpace(pairs.Instructions[i])).ToArray();
        if (missing.Length == pairs.Count)
            throw new ArgumentException(Directory.Exists(reference)
                ? $"{Path.Combine(reference, ImagePairs.InstructionsFile)} is missing or empty: --text needs an instruction for every pair, one {{\"name\": \"FILE\", \"instruction\": \"TEXT\"}} per line; or leave out --text"
                : $"the pairs of {reference} carry no instructions; leave out --text");
        if (missing.Length > 0)
            throw new ArgumentException($"{Path.Combine(reference, ImagePairs.InstructionsFile)} gives no instruction for {missing.Length} of {pairs.Count} pairs " +
                $"(e.g. {string.Join(", ", missing.Take(3).Select(i => pairs.Names[i]))}); --text needs one line {{\"name\": \"FILE\", \"instruction\": \"TEXT\"}} for every pair, or leave out --text");
        return new CaptionSet([.. pairs.Instructions.Select(i => new[] { i! })], [.. pairs.Instructions.Select(_ => Array.Empty<string>())], Source);
    }
}
