namespace Snce.Text;

/// <summary>
/// Templated captions of an emoji from its metadata (emojibase label, keywords, subcategory): several training
/// phrasings, drawn at random each training step, and held-out phrasings that training never sees (the main
/// alignment test: the same emoji, said differently).
/// </summary>
/// <remarks>
/// Training: "NAME", "an emoji of a NAME", "a NAME, K1, K2", "NAME emoji, SUBCATEGORY".
/// Held out: "a picture of a NAME", "NAME icon, K1, K2, K3".
/// NAME is the emojibase label ("smiling face with heart-eyes", "waving hand: medium skin tone"), K the first keywords
/// that are not already words of the name, SUBCATEGORY the Unicode subcategory with dashes as spaces ("face smiling").
/// Held-out emoji (the other generalization test) are the validation split, keyed by base emoji, so all skin-tone
/// variants of an emoji are held out together (<see cref="Data.DataSplit"/>).
/// </remarks>
public static class EmojiCaptions
{
    /// <summary>Training phrasings per emoji.</summary>
    public const int TrainPhrasings = 4;
    /// <summary>Held-out phrasings per emoji.</summary>
    public const int HeldOutPhrasings = 2;

    /// <summary>The attributes an emoji data set must carry.</summary>
    public static readonly string[] RequiredAttributes = ["name", "keywords", "subcategory"];

    /// <summary>(training phrasings, held-out phrasings) of one emoji.</summary>
    public static (string[] Train, string[] HeldOut) Of(string name, string keywords, string subcategory)
    {
        name = name.Trim();
        if (name.Length == 0) throw new ArgumentException("an emoji without a name cannot be captioned");
        var nameWords = name.Split([' ', ':', ',', '-'], StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var extra = keywords.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(k => !nameWords.Contains(k)).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        var sub = subcategory.Replace('-', ' ').Trim();
        string Keys(int n, string lead) => extra.Length == 0 ? "" : lead + string.Join(", ", extra.Take(n));
        var a = Article(name);
        string[] train =
        [
            name,
            $"an emoji of {a} {name}",
            $"{a} {name}{Keys(2, ", ")}",
            $"{name} emoji{(sub.Length > 0 ? ", " + sub : "")}",
        ];
        string[] heldOut =
        [
            $"a picture of {a} {name}",
            $"{name} icon{Keys(3, ", ")}",
        ];
        return (train, heldOut);
    }

    static string Article(string phrase) => "aeiou".Contains(char.ToLowerInvariant(phrase[0])) ? "an" : "a";
}
