using System.Text.Json;
using System.Text.Json.Nodes;
using Snce.Data.Packages;

namespace Snce.Data.BuiltIn;

/// <summary>
/// Emoji from <c>emoji-datasource-VENDOR</c>: every 64×64 RGBA PNG in <c>img/VENDOR/64/</c> that <c>emoji.json</c> lists
/// for the vendor (skin-tone variants included and marked), composited onto white → RGB [3, 64, 64].
/// Label = Unicode category (10 classes, in Unicode order). Attributes per image: name and keywords (from
/// <c>emojibase-data</c>'s en/data.json), short_name, subcategory (99), unified (the code point sequence, equal across
/// vendors, so the same emoji pairs up), base_unified (the emoji without skin tone) and skin_tone
/// (none, or the tone names, e.g. "medium-dark,light").
/// </summary>
public sealed record EmojiDataSet : BuiltInDataSet
{
    /// <summary>Image side in pixels: the packages' 64×64 PNGs are kept at that size.</summary>
    public const int Side = 64;
    static readonly Dictionary<string, string> ToneNames = new()
    {
        ["1F3FB"] = "light", ["1F3FC"] = "medium-light", ["1F3FD"] = "medium", ["1F3FE"] = "medium-dark", ["1F3FF"] = "dark",
    };

    /// <summary>Whose artwork: selects the emoji-datasource-VENDOR package, its image folder and its licence.</summary>
    public required EmojiVendor Vendor { get; init; }
    /// <summary>The emoji-datasource package (images + emoji.json).</summary>
    public PackageSpec ImagePackage => Packages[0];
    /// <summary>The emojibase-data package (keywords).</summary>
    public PackageSpec KeywordPackage => Packages[1];

    string VendorKey => EnumNames<EmojiVendor>.Name(Vendor);

    sealed record Entry(string Image, string Unified, string BaseUnified, string SkinTone, JsonObject Emoji, long SortOrder);

    /// <inheritdoc/>
    public override DataSetContent Convert(IReadOnlyDictionary<string, string> tarballs, IProgress<DataProgress>? progress)

    {
        var imageFolder = $"img/{VendorKey}/64/";
        byte[]? emojiJson = null;
        var pngs = new Dictionary<string, byte[]>();
        NpmTarball.ForEachFile(tarballs[ImagePackage.Name], p => p == "emoji.json" || p.StartsWith(imageFolder, StringComparison.Ordinal),
            (p, bytes) => { if (p == "emoji.json") emojiJson = bytes; else pngs[p[imageFolder.Length..]] = bytes; });
        if (emojiJson is null) throw new InvalidDataException($"{ImagePackage} has no emoji.json: not the expected package layout");
        var labels = NpmTarball.ReadFiles(tarballs[KeywordPackage.Name], "en/data.json")["en/data.json"];

        var entries = ListEntries(emojiJson, out var withoutImage);
        var missing = entries.Where(e => !pngs.ContainsKey(e.Image)).Select(e => imageFolder + e.Image).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException(
                $"{ImagePackage} lacks {missing.Count} image(s) that emoji.json lists, e.g. {string.Join(", ", missing.Take(3))}: the package is truncated");

        var decoded = new RawImage[entries.Count];
        var done = 0L;
        Parallel.For(0, entries.Count, i =>
        {
            var img = ImageFiles.Decode(pngs[entries[i].Image], $"{ImagePackage}:{imageFolder}{entries[i].Image}");
            if (img.Width != Side || img.Height != Side)
                throw new InvalidDataException($"{ImagePackage}:{imageFolder}{entries[i].Image} is {img.Width}×{img.Height}, expected {Side}×{Side}");
            decoded[i] = img.WithChannels(3);
            var n = Interlocked.Increment(ref done);
            if (n % 256 == 0 || n == entries.Count) progress?.Report(new DataProgress("decode", n, entries.Count));
        });

        var categories = entries.GroupBy(e => Str(e.Emoji, "category")).OrderBy(g => g.Min(e => e.SortOrder)).Select(g => g.Key).ToArray();
        var keywords = ReadEmojibase(labels);
        var planar = new byte[entries.Count * 3 * Side * Side];
        for (var i = 0; i < entries.Count; i++) decoded[i].CopyPlanarTo(planar.AsSpan(i * 3 * Side * Side, 3 * Side * Side));
        string[] Attr(Func<Entry, string> f) => [.. entries.Select(f)];
        var attributes = new Dictionary<string, string[]>
        {
            ["name"] = Attr(e => keywords.TryGetValue(Plain(e.Unified), out var k) ? k.Label : Str(e.Emoji, "name").ToLowerInvariant()),
            ["short_name"] = Attr(e => Str(e.Emoji, "short_name")),
            ["subcategory"] = Attr(e => Str(e.Emoji, "subcategory")),
            ["keywords"] = Attr(e => keywords.TryGetValue(Plain(e.BaseUnified), out var k) ? k.Tags : ""),
            ["unified"] = Attr(e => e.Unified),
            ["base_unified"] = Attr(e => e.BaseUnified),
            ["skin_tone"] = Attr(e => e.SkinTone),
        };
        var notes = new List<string>();
        if (withoutImage > 0) notes.Add($"{withoutImage} emoji listed in emoji.json have no {VendorKey} image (has_img_{VendorKey} = false) and are left out");
        var noKeywords = entries.Count(e => !keywords.ContainsKey(Plain(e.BaseUnified)));
        if (noKeywords > 0) notes.Add($"{noKeywords} emoji have no entry in {KeywordPackage} (no keywords)");
        return new DataSetContent(planar, entries.Count, 3, Side,
            [.. entries.Select(e => (long)Array.IndexOf(categories, Str(e.Emoji, "category")))], categories,
            attributes, DataSplit.AttributeKey("base_unified"), notes);
    }

    /// <summary>Base emoji by sort_order, each followed by its skin-tone variants (by tone key); only those the vendor draws.</summary>
    List<Entry> ListEntries(byte[] emojiJson, out int withoutImage)
    {
        var list = new List<Entry>();
        withoutImage = 0;
        var all = JsonNode.Parse(emojiJson) as JsonArray ?? throw new InvalidDataException($"{ImagePackage}: emoji.json is not a JSON array");
        foreach (var e in all.OfType<JsonObject>().OrderBy(e => (long?)e["sort_order"] ?? long.MaxValue))
        {
            var unified = Str(e, "unified");
            var order = (long?)e["sort_order"] ?? long.MaxValue;
            if (Has(e)) list.Add(new Entry(Str(e, "image"), unified, unified, "none", e, order));
            else withoutImage++;
            if (e["skin_variations"] is not JsonObject variations) continue;
            foreach (var (tone, node) in variations.OrderBy(v => v.Key, StringComparer.Ordinal))
            {
                if (node is not JsonObject v) continue;
                if (!Has(v)) { withoutImage++; continue; }
                var toneName = string.Join(",", tone.Split('-').Select(t => ToneNames.GetValueOrDefault(t, t)));
                list.Add(new Entry(Str(v, "image"), Str(v, "unified"), unified, toneName, e, order));
            }
        }
        return list;
    }

    bool Has(JsonObject e) => (bool?)e[$"has_img_{VendorKey}"] ?? false;

    static string Str(JsonObject e, string key) =>
        e[key]?.GetValue<string>() ?? throw new InvalidDataException($"emoji.json: the entry {e["unified"]?.ToJsonString() ?? "(no unified)"} has no \"{key}\"");

    /// <summary>emojibase writes code points without the FE0F variation selector.</summary>
    static string Plain(string unified) => string.Join("-", unified.Split('-').Where(p => p != "FE0F"));

    /// <summary>emojibase en/data.json: label and tags by hexcode (FE0F removed), skins included.</summary>
    static Dictionary<string, (string Label, string Tags)> ReadEmojibase(byte[] json)
    {
        var map = new Dictionary<string, (string, string)>();
        void Add(JsonObject o, string tags)
        {
            if (o["hexcode"]?.GetValue<string>() is { } hex)
                map.TryAdd(Plain(hex), (o["label"]?.GetValue<string>() ?? "", tags));
        }
        foreach (var o in (JsonNode.Parse(json) as JsonArray ?? []).OfType<JsonObject>())
        {
            var tags = o["tags"] is JsonArray t ? string.Join(", ", t.Select(x => x?.GetValue<string>())) : "";
            Add(o, tags);
            if (o["skins"] is JsonArray skins)
                foreach (var s in skins.OfType<JsonObject>()) Add(s, tags);
        }
        return map;
    }
}
