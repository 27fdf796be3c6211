using Snce.Data;
using Snce.Tests.Support;
using StbImageWriteSharp;

namespace Snce.Tests.Data;

public class ImageFolderTests
{
    /// <summary>Writes an image of one color (per-pixel <paramref name="pixel"/> when given) as PNG or JPEG.</summary>
    internal static void Write(string path, int width, int height, ColorComponents comp, Func<int, int, byte[]> pixel)
    {
        var c = (int)comp;
        var data = new byte[width * height * c];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                pixel(x, y).CopyTo(data, (y * width + x) * c);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var fs = File.Create(path);
        if (path.EndsWith(".jpg")) new ImageWriter().WriteJpg(data, width, height, comp, fs, 95);
        else new ImageWriter().WritePng(data, width, height, comp, fs);
    }

    [Fact]
    public void MixedFilesBecomeOneSizeWithClassesFromSortedFolderNames()
    {
        using var tmp = new TempDir();
        var root = tmp["imgs"];
        // zebra/: a gray PNG and an odd-size RGB JPEG; apple/: an RGBA PNG whose top-left pixel is fully transparent.
        Write(Path.Combine(root, "zebra", "gray.png"), 28, 28, ColorComponents.Grey, (x, y) => [(byte)(x * 9)]);
        Write(Path.Combine(root, "zebra", "odd.jpg"), 37, 23, ColorComponents.RedGreenBlue, (x, y) => [200, 40, 40]);
        Write(Path.Combine(root, "apple", "sub", "rgba.png"), 28, 28, ColorComponents.RedGreenBlueAlpha,
            (x, y) => x == 0 && y == 0 ? [0, 0, 0, 0] : [10, 20, 30, 255]);
        // Not usable: a corrupt PNG, a text file, a file outside any class folder.
        File.WriteAllBytes(Path.Combine(root, "zebra", "broken.png"), [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        File.WriteAllText(Path.Combine(root, "apple", "notes.txt"), "hello");
        File.WriteAllText(Path.Combine(root, "README.md"), "# images");

        using var ds = DataSets.Load(root, new DataOptions { Size = 28, Channels = 3 });
        Assert.Equal(["apple", "zebra"], ds.Classes);
        Assert.Equal([3, 3, 28, 28], ds.Images.shape);
        Assert.Equal(["apple/sub/rgba.png", "zebra/gray.png", "zebra/odd.jpg"], ds.Attributes["file"]);
        Assert.Equal([0, 1, 1], ds.Labels.data<long>().ToArray());

        // RGBA on white: the transparent pixel is 255 in every channel; opaque pixels keep their color.
        Assert.Equal([255, 255, 255], Enumerable.Range(0, 3).Select(c => ds.Images[0, c, 0, 0].item<byte>()));
        Assert.Equal([10, 20, 30], Enumerable.Range(0, 3).Select(c => ds.Images[0, c, 5, 5].item<byte>()));
        // Gray → RGB: equal channels, the gradient kept.
        Assert.Equal([27, 27, 27], Enumerable.Range(0, 3).Select(c => ds.Images[1, c, 0, 3].item<byte>()));
        // 37×23 JPEG → center 23×23 → 28×28; a flat color stays (JPEG quantization ± a few levels).
        Assert.InRange(ds.Images[2, 0, 14, 14].item<byte>(), 190, 210);
        Assert.InRange(ds.Images[2, 1, 14, 14].item<byte>(), 30, 50);

        var skipped = ds.Skipped.ToDictionary(s => Path.GetRelativePath(root, s.Path), s => s.Reason);
        Assert.Equal(3, skipped.Count);
        Assert.StartsWith("corrupt image", skipped["zebra/broken.png"]);
        Assert.Equal("not an image", skipped["apple/notes.txt"]);
        Assert.Contains("not in a class subfolder", skipped["README.md"]);
    }

    [Fact]
    public void NativeSizeAndChannelsComeFromTheImages()
    {
        using var tmp = new TempDir();
        Write(tmp["f/a/1.png"], 20, 16, ColorComponents.Grey, (x, y) => [(byte)x]);
        Write(tmp["f/b/2.png"], 20, 16, ColorComponents.Grey, (x, y) => [(byte)y]);
        using var ds = DataSets.Load(tmp["f"], new DataOptions());
        Assert.Equal([2, 1, 16, 16], ds.Images.shape); // gray files → 1 channel; 20×16 → center 16×16, no resize
        Assert.Equal(2, ds.Images[0, 0, 0, 0].item<byte>()); // columns 2..17 of 20

        Write(tmp["f/b/3.png"], 30, 30, ColorComponents.RedGreenBlue, (x, y) => [1, 2, 3]);
        var e = Assert.Throws<ArgumentException>(() => DataSets.Load(tmp["f"], new DataOptions()));
        Assert.Contains("--size", e.Message);
        using var rgb = DataSets.Load(tmp["f"], new DataOptions { Size = 8 });
        Assert.Equal([3, 3, 8, 8], rgb.Images.shape); // one color file → 3 channels
    }

    [Fact]
    public void AnEmptyFolderIsAnErrorNamingIt()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["empty"]);
        var e = Assert.Throws<InvalidDataException>(() => DataSets.Load(tmp["empty"], new DataOptions()));
        Assert.Contains(tmp["empty"], e.Message);

        Directory.CreateDirectory(tmp["flat"]);
        Write(tmp["flat/a.png"], 4, 4, ColorComponents.Grey, (x, y) => [1]);
        Directory.CreateDirectory(tmp["flat/cls"]);
        File.WriteAllText(tmp["flat/cls/x.txt"], "only a text file in the class folder");
        e = Assert.Throws<InvalidDataException>(() => DataSets.Load(tmp["flat"], new DataOptions()));
        Assert.Contains("no images in class subfolders", e.Message);
        Assert.Contains(tmp["flat"], e.Message);

        Assert.Throws<DirectoryNotFoundException>(() => DataSets.Load(tmp["nope"], new DataOptions()));
    }

    [Fact]
    public void FolderSplitIsSeededByFileAndLimitTakesTheFirstPerSplit()
    {
        using var tmp = new TempDir();
        for (var i = 0; i < 40; i++) Write(tmp[$"f/{(i % 2 == 0 ? "even" : "odd")}/{i:D2}.png"], 4, 4, ColorComponents.Grey, (x, y) => [(byte)i]);
        using var a = DataSets.Load(tmp["f"], new DataOptions { ValidationFraction = 0.25, Seed = 1 });
        using var b = DataSets.Load(tmp["f"], new DataOptions { ValidationFraction = 0.25, Seed = 1 });
        using var c = DataSets.Load(tmp["f"], new DataOptions { ValidationFraction = 0.25, Seed = 2 });
        Assert.Equal(a.Split.data<byte>().ToArray(), b.Split.data<byte>().ToArray());
        Assert.NotEqual(a.Split.data<byte>().ToArray(), c.Split.data<byte>().ToArray());
        var keys = a.Attributes["file"];
        Assert.Equal(DataSplit.Assign(keys, 0.25, 1), a.Split.data<byte>().ToArray());

        using var limited = DataSets.Load(tmp["f"], new DataOptions { ValidationFraction = 0.25, Seed = 1, Limit = 3 });
        var split = a.Split.data<byte>().ToArray();
        var rows = DataSets.SubsetRows(split, 3);
        Assert.Equal(3, rows.Count(i => split[i] == 0));
        Assert.Equal(3, rows.Count(i => split[i] == 1));
        var expected = rows.Select(i => keys[i]);
        Assert.Equal(expected, limited.Attributes["file"]);
    }

    [Fact]
    public void ABuiltInNameWinsOverAFolderAndAnUnknownNameSaysWhatIsAllowed()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => DataSets.Load("cifar10", new DataOptions()));
        Assert.Contains("fashion-mnist", e.Message);
        Assert.Contains("image folder", e.Message);
    }
}
