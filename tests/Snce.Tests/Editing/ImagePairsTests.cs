using Snce.Data;
using Snce.Editing;
using Snce.Tests.Support;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

public class ImagePairsTests
{
    static void Png(string path, int side, byte value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var fs = File.Create(path);
        new ImageWriter().WritePng(Enumerable.Repeat(value, side * side).ToArray(), side, side, ColorComponents.Grey, fs);
    }

    static ImageDataset Vendor(string name, string[] unified, byte[] values, byte[] split) => new()
    {
        Name = name,
        Images = tensor(values).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous(),
        Labels = zeros(values.Length, ScalarType.Int64),
        Split = tensor(split),
        Classes = ["smileys"],
        Attributes = new Dictionary<string, string[]> { ["unified"] = unified },
    };

    [Fact]
    public void SkinTonePairsTakeEachBaseEmojiToItsVariantOfOneTone()
    {
        // 👋 (base + dark + light), 👍 (base + light only), 😀 (no variants), a stray dark variant of a base that is not drawn.
        using var emoji = new ImageDataset
        {
            Name = "emoji-twitter",
            Images = tensor(new byte[] { 1, 2, 3, 4, 5, 6, 7 }).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous(),
            Labels = zeros(7, ScalarType.Int64), Split = tensor(new byte[] { 1, 1, 1, 0, 0, 0, 0 }), Classes = ["people"],
            Attributes = new Dictionary<string, string[]>
            {
                ["base_unified"] = ["1F44B", "1F44B", "1F44B", "1F44D", "1F44D", "1F600", "1F9D1"],
                ["skin_tone"] = ["none", "dark", "light", "none", "light", "none", "dark"],
            },
        };
        using var dark = ImagePairs.SkinTone(emoji, "dark");
        Assert.Equal(["1F44B"], dark.Names);
        Assert.Equal([1], dark.Sources.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Equal([2], dark.Targets.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Equal("make the skin tone dark", dark.Instructions[0]);
        Assert.Equal([1], dark.Split.data<byte>().ToArray());
        using var light = ImagePairs.SkinTone(emoji, "light");
        Assert.Equal(["1F44B", "1F44D"], light.Names);
        Assert.Equal([3, 5], light.Targets.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Contains("unknown skin tone 'purple'", Assert.Throws<ArgumentException>(() => ImagePairs.SkinTone(emoji, "purple")).Message);
        Assert.Equal("emoji-google:skin-tone=dark", PairedData.Reference("emoji-google:skin-tone=Dark"));
        Assert.Contains("skin-tone pairs need emoji", Assert.Throws<ArgumentException>(() => PairedData.Reference("mnist:skin-tone=dark")).Message);
    }

    [Fact]
    public void SeveralSkinTonesMakeOneSetWithAnInstructionPerTone()
    {
        // 👋 (base + dark + medium-dark + light), 👍 (base + light only).
        using var emoji = new ImageDataset
        {
            Name = "emoji-twitter",
            Images = tensor(new byte[] { 1, 2, 3, 4, 5, 6 }).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous(),
            Labels = zeros(6, ScalarType.Int64), Split = tensor(new byte[] { 1, 1, 1, 1, 0, 0 }), Classes = ["people"],
            Attributes = new Dictionary<string, string[]>
            {
                ["base_unified"] = ["1F44B", "1F44B", "1F44B", "1F44B", "1F44D", "1F44D"],
                ["skin_tone"] = ["none", "dark", "medium-dark", "light", "none", "light"],
            },
        };
        using var pairs = ImagePairs.SkinTone(emoji, ["light", "medium-dark", "dark"]);
        Assert.Equal(["1F44B:light", "1F44B:medium-dark", "1F44B:dark", "1F44D:light"], pairs.Names);
        Assert.Equal([1, 1, 1, 5], pairs.Sources.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Equal([4, 3, 2, 6], pairs.Targets.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Equal(["make the skin tone light", "make the skin tone medium dark", "make the skin tone dark", "make the skin tone light"], pairs.Instructions.Select(i => i!).ToArray());
        Assert.Equal([1, 1, 1, 0], pairs.Split.data<byte>().ToArray());
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => ImagePairs.SkinTone(emoji, ["dark", "dark"])).Message);
        // The spec: tones in the canonical order, "all" for the five.
        Assert.Equal("emoji-twitter:skin-tone=medium,dark", PairedData.Reference("emoji-twitter:skin-tone=dark,Medium"));
        Assert.Equal("emoji-twitter:skin-tone=" + ImagePairs.SkinTones.Replace(", ", ","), PairedData.Reference("emoji-twitter:skin-tone=all"));
        Assert.Contains("unknown skin tone 'blue'", Assert.Throws<ArgumentException>(() => PairedData.Reference("emoji-twitter:skin-tone=dark,blue")).Message);
        Assert.Equal("in google style", ImagePairs.StyleInstruction("emoji-google"));
    }

    [Fact]
    public void VendorsPairByCodePointInTheSourcesOrder()
    {
        using var twitter = Vendor("emoji-twitter", ["1F600", "1F601", "1F602"], [10, 11, 12], [0, 1, 0]);
        using var google = Vendor("emoji-google", ["1F602", "1F600", "2764"], [22, 20, 29], [0, 0, 1]);
        using var pairs = ImagePairs.Match(twitter, google, instruction: "in google style");
        Assert.Equal(["1F600", "1F602"], pairs.Names);
        Assert.Equal([10, 12], pairs.Sources.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Equal([20, 22], pairs.Targets.select(1, 0).select(1, 0).select(1, 0).data<byte>().ToArray());
        Assert.Equal([0, 0], pairs.Split.data<byte>().ToArray());
        Assert.All(pairs.Instructions, i => Assert.Equal("in google style", i));
        using var back = ImagePairs.Match(google, twitter);
        Assert.Equal(["1F602", "1F600"], back.Names);
        Assert.Contains("no 'code' attribute", Assert.Throws<ArgumentException>(() => ImagePairs.Match(twitter, google, "code")).Message);
    }

    [Fact]
    public void APairedFolderReadsWithItsInstructions()
    {
        using var dir = new TempDir();
        for (var i = 0; i < 5; i++)
        {
            Png(dir[$"p/src/{i}.png"], 8, (byte)(10 * i));
            Png(dir[$"p/dst/{i}.png"], 8, (byte)(10 * i + 1));
        }
        File.WriteAllText(dir["p/instructions.jsonl"], "{\"name\": \"2.png\", \"instruction\": \"make it lighter\"}\n\n{\"name\": \"4.png\", \"instruction\": \"x\"}\n");
        using var pairs = ImagePairs.LoadFolder(dir["p"], channels: 1, size: 4);
        Assert.Equal(["0.png", "1.png", "2.png", "3.png", "4.png"], pairs.Names);
        Assert.Equal([5, 1, 4, 4], pairs.Sources.shape);
        Assert.Equal(31, pairs.Targets[3, 0, 1, 1].item<byte>());
        Assert.Equal(30, pairs.Sources[3, 0, 1, 1].item<byte>());
        Assert.Equal(new[] { "-", "-", "make it lighter", "-", "x" }, pairs.Instructions.Select(i => i ?? "-").ToArray());
        Assert.Equal(DataSplit.Assign(pairs.Names, 0.1, 0), pairs.Split.data<byte>().ToArray());
    }

    [Fact]
    public void BadPairedFoldersFailNamingTheFile()
    {
        using var dir = new TempDir();
        Png(dir["p/src/a.png"], 4, 1);
        Assert.Contains("needs", Assert.Throws<DirectoryNotFoundException>(() => ImagePairs.LoadFolder(dir["p"], 1, 4)).Message);
        Png(dir["p/dst/b.png"], 4, 1);
        var lonely = Assert.Throws<InvalidDataException>(() => ImagePairs.LoadFolder(dir["p"], 1, 4)).Message;
        Assert.Contains("src/a.png", lonely);
        Assert.Contains("dst/b.png", lonely);
        File.Move(dir["p/dst/b.png"], dir["p/dst/a.png"]);
        File.WriteAllText(dir["p/instructions.jsonl"], "{\"name\": \"c.png\", \"instruction\": \"x\"}\n");
        Assert.Contains("instructions.jsonl:1: no pair named 'c.png'", Assert.Throws<InvalidDataException>(() => ImagePairs.LoadFolder(dir["p"], 1, 4)).Message);
        File.WriteAllText(dir["p/instructions.jsonl"], "{\"name\": \"a.png\", \"instruction\": \"x\"}\nnot json\n");
        Assert.Contains("instructions.jsonl:2: not a JSON object", Assert.Throws<InvalidDataException>(() => ImagePairs.LoadFolder(dir["p"], 1, 4)).Message);
        File.WriteAllText(dir["p/instructions.jsonl"], "");
        File.WriteAllText(dir["p/dst/a.png"], "junk");
        Assert.Contains("not a readable image", Assert.Throws<InvalidDataException>(() => ImagePairs.LoadFolder(dir["p"], 1, 4)).Message);
    }
}
