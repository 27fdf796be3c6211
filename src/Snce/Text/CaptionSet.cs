using Snce.Data;

namespace Snce.Text;

/// <summary>
/// The captions of every image of a data set: training phrasings (one is drawn per image and step) and held-out
/// phrasings (evaluation only; none for a captions.jsonl folder, whose held-out test is the validation split).
/// </summary>
/// <param name="Train">Per image, its training captions (≥ 1).</param>
/// <param name="HeldOut">Per image, its held-out phrasings (may be empty).</param>
/// <param name="Source">Where the captions came from: "emoji-templates" or "captions.jsonl".</param>
public sealed record CaptionSet(string[][] Train, string[][] HeldOut, string Source)
{
    /// <summary>Images covered.</summary>
    public int Count => Train.Length;

    /// <summary>
    /// Captions of a loaded data set: emoji get templated captions from their metadata, a captions.jsonl folder its
    /// own lines. Anything else fails naming what would work.
    /// </summary>
    public static CaptionSet From(ImageDataset data)
    {
        var a = data.Attributes;
        if (a.TryGetValue(CaptionFile.Attribute, out var lines))
            return new CaptionSet([.. lines.Select(l => l.Split(CaptionFile.Separator))], [.. lines.Select(_ => Array.Empty<string>())], CaptionFile.FileName);
        if (EmojiCaptions.RequiredAttributes.All(a.ContainsKey))
        {
            var train = new string[data.Count][];
            var heldOut = new string[data.Count][];
            for (var i = 0; i < data.Count; i++)
                (train[i], heldOut[i]) = EmojiCaptions.Of(a["name"][i], a["keywords"][i], a["subcategory"][i]);
            return new CaptionSet(train, heldOut, "emoji-templates");
        }
        throw new ArgumentException(
            $"data set '{data.Name}' has no captions: text-to-image needs the emoji data (snce data fetch emoji) or an image folder with a {CaptionFile.FileName} ({{\"file\": ..., \"caption\": ...}} per line)");
    }
}
