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
        var parts = new List<ImageDataset>();
        try
        {
            foreach (var v in vendors) parts.Add(DataSets.Load("emoji", options with { Vendor = v }, packages, progress));
            using var scope = NewDisposeScope();
            var images = cat(parts.Select(p => p.Images).ToArray(), 0);
            var split = cat(parts.Select(p => p.Split).ToArray(), 0);
            var labels = cat(parts.Select((p, i) => full(p.Count, (long)i, dtype: ScalarType.Int64)).ToArray(), 0);
            var names = vendors.Select(EnumNames<EmojiVendor>.Name).ToArray();
            string[] Attr(string key) => parts.SelectMany(p => p.Attributes.TryGetValue(key, out var a) ? a : Enumerable.Repeat("", p.Count)).ToArray();
            return new ImageDataset
            {
                Name = $"emoji ({string.Join(", ", names)})",
                Images = images.MoveToOuterDisposeScope(), Labels = labels.MoveToOuterDisposeScope(), Split = split.MoveToOuterDisposeScope(),
                Classes = names,
                Attributes = new Dictionary<string, string[]>
                {
                    ["unified"] = Attr("unified"), ["base_unified"] = Attr("base_unified"),
                    ["vendor"] = parts.SelectMany((p, i) => Enumerable.Repeat(names[i], p.Count)).ToArray(),
                },
                Credit = Join(parts.Select(p => p.Credit)), Notice = Join(parts.Select(p => p.Notice)),
            };
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    static string? Join(IEnumerable<string?> lines)
    {
        var present = lines.OfType<string>().Distinct().ToArray();
        return present.Length == 0 ? null : string.Join("; ", present);
    }
}
