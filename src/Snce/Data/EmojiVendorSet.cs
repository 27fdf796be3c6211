using Snce.Data.BuiltIn;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>
/// The emoji of several vendors as one data set labeled by vendor (label i = <c>vendors[i]</c>): what a vendor classifier is
/// trained on. Each vendor's images keep their own split, which emoji caches key by the base code point, so an emoji held out
/// for one vendor is held out for all of them: the validation split holds only emoji never seen in training, in any style.
/// </summary>
public static class EmojiVendorSet
{
    /// <summary>The vendors a vendor classifier tells apart unless told otherwise (Apple only on request: its licence).</summary>
    public static readonly EmojiVendor[] DefaultVendors = [EmojiVendor.Twitter, EmojiVendor.Google];

    /// <summary>"twitter,google" → the vendors, in that order; throws naming a bad or repeated one, or fewer than two.</summary>
    public static EmojiVendor[] Parse(string list)
    {
        var vendors = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(v => EnumNames<EmojiVendor>.Parse(v)).ToArray();
        if (vendors.Distinct().Count() != vendors.Length) throw new ArgumentException($"vendors '{list}' name a vendor twice");
        if (vendors.Length < 2) throw new ArgumentException($"a vendor classifier tells at least 2 vendors apart; got '{list}' (e.g. twitter,google)");
        return vendors;
    }

    /// <summary>
    /// Loads <c>emoji</c> once per vendor with <paramref name="options"/> (size, channels, limit per vendor and split, data folder,
    /// fetching; its <see cref="DataOptions.Vendor"/> must be unset) and stacks them as the data set "emoji (twitter, google)": labels = vendor index, classes = vendor names,
    /// attributes <c>unified</c>, <c>base_unified</c> and <c>vendor</c>; credits and notices of all vendors joined.
    /// </summary>
    public static ImageDataset Load(IReadOnlyList<EmojiVendor> vendors, DataOptions options, Packages.IPackageSource? packages = null,
        IProgress<DataProgress>? progress = null)
    {
        if (options.Vendor is not null) throw new ArgumentException("--vendor picks one emoji vendor; a vendor classifier takes several: --vendors twitter,google");
        if (vendors.Count < 2 || vendors.Distinct().Count() != vendors.Count)
            throw new ArgumentException($"a vendor classifier needs at least 2 distinct vendors; got [{string.Join(", ", vendors)}]");
        // The vendors' emoji sets stacked by the data-set union (DataSets.Load("emoji-twitter+emoji-google")), relabelled by vendor.
        var names = vendors.Select(EnumNames<EmojiVendor>.Name).ToArray();
        var parts = vendors.Select(v => BuiltInDataSets.Emoji(v).Name).ToArray();
        var both = DataSets.Load(string.Join("+", parts), options, packages, progress);
        both.Labels.Dispose();
        var vendorOf = both.Attributes["source"].Select(s => Array.IndexOf(parts, s)).ToArray();
        return new ImageDataset
        {
            Name = $"emoji ({string.Join(", ", names)})",
            Images = both.Images, Split = both.Split, Labels = tensor(vendorOf.Select(i => (long)i).ToArray(), ScalarType.Int64),
            Classes = names,
            Attributes = new Dictionary<string, string[]>
            {
                ["unified"] = both.Attributes["unified"], ["base_unified"] = both.Attributes["base_unified"],
                ["vendor"] = vendorOf.Select(i => names[i]).ToArray(),
            },
            Credit = both.Credit, Notice = both.Notice,
        };
    }
}
