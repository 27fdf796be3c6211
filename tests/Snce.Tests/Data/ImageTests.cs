using System.Text.Json;
using Snce.Data;
using Snce.Tests.Support;
using StbImageSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Data;

/// <summary>RawImage pixel operations, single-file decoding and PNG grids.</summary>
public class ImageTests
{
    static RawImage Gray(int w, int h, Func<int, int, byte> f)
    {
        var px = new byte[w * h];
        for (var y = 0; y < h; y++) for (var x = 0; x < w; x++) px[y * w + x] = f(x, y);
        return new RawImage(px, w, h, 1);
    }

    [Fact]
    public void ASquareImageOfTheTargetSizeIsUnchanged()
    {
        var img = Gray(5, 5, (x, y) => (byte)(x * 50 + y));
        Assert.Same(img, img.CenterCropResize(5));
    }

    [Fact]
    public void ShrinkingAveragesTheCoveredPixels()
    {
        var img = Gray(4, 4, (x, y) => (byte)(x < 2 ? (y < 2 ? 0 : 100) : (y < 2 ? 200 : 40)));
        Assert.Equal([0, 200, 100, 40], img.CenterCropResize(2).Pixels);
        // Non-integer ratio: 3 → 2 covers 1.5 source pixels each: (10 + 0.5·40) / 1.5 = 20, (0.5·40 + 70) / 1.5 = 60.
        var row = Gray(3, 3, (x, y) => (byte)(x switch { 0 => 10, 1 => 40, _ => 70 }));
        Assert.Equal([20, 60, 20, 60], row.CenterCropResize(2).Pixels);
    }

    [Fact]
    public void EnlargingIsBilinearAndKeepsAFlatImageFlat()
    {
        var flat = Gray(3, 3, (_, _) => 77);
        Assert.All(flat.CenterCropResize(7).Pixels, p => Assert.Equal(77, p));
        var ramp = Gray(2, 2, (x, _) => (byte)(x * 100)).CenterCropResize(4);
        Assert.Equal([0, 25, 75, 100], ramp.Pixels[..4]); // centers at −0.25, 0.25, 0.75, 1.25 (edges clamped)
    }

    [Fact]
    public void OddSizesAreCenterCropped()
    {
        // 37×23 → the centered 23×23 (columns 7..29) → 28×28; a left/right split at column 18.5 stays centered.
        var img = Gray(37, 23, (x, _) => (byte)(x < 7 || x > 29 ? 255 : x <= 18 ? 0 : 200));
        var r = img.CenterCropResize(28);
        Assert.Equal((28, 28), (r.Width, r.Height));
        Assert.Equal(0, r.Pixels[0]);            // no white border from the cropped-off columns
        Assert.Equal(200, r.Pixels[27]);
        Assert.Equal(0, r.Pixels[13]);
        Assert.Equal(200, r.Pixels[15]);
    }

    [Fact]
    public void ChannelConversionUsesBt601Luma()
    {
        var rgb = new RawImage([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 10, 10], 4, 1, 3);
        Assert.Equal([76, 150, 29, 10], rgb.WithChannels(1).Pixels);
        Assert.Equal([76, 76, 76], rgb.WithChannels(1).WithChannels(3).Pixels[..3]);
        Assert.Throws<ArgumentException>(() => rgb.WithChannels(2));
    }

    [Fact]
    public void ImageFilesLoadGivesChwAndCompositesAlphaOnWhite()
    {
        using var tmp = new TempDir();
        ImageFolderTests.Write(tmp["a.png"], 3, 2, StbImageWriteSharp.ColorComponents.GreyAlpha, (x, y) => [(byte)(x * 100), (byte)(y == 0 ? 255 : 0)]);
        using var t = ImageFiles.Load(tmp["a.png"]);
        Assert.Equal([1, 2, 3], t.shape);
        Assert.Equal([0, 100, 200, 255, 255, 255], t.data<byte>().ToArray());
        using var rgb = ImageFiles.Load(tmp["a.png"], channels: 3, size: 2);
        Assert.Equal([3, 2, 2], rgb.shape);
        File.WriteAllText(tmp["b.png"], "not a png");
        var e = Assert.Throws<InvalidDataException>(() => ImageFiles.Load(tmp["b.png"]));
        Assert.Contains(tmp["b.png"], e.Message);
        Assert.Throws<FileNotFoundException>(() => ImageFiles.Load(tmp["c.png"]));
    }

    [Fact]
    public void AGridPngHoldsEveryImageAtItsOffset()
    {
        using var tmp = new TempDir();
        using var images = randint(0, 256, [5, 3, 4, 6], dtype: ScalarType.Byte); // B = 5, C = 3, H = 4, W = 6
        var path = tmp["out/grid.png"];
        ImageGrid.SavePng(path, images, columns: 2, captions: ["a", "b", "c", "d", "e"]);

        var png = ImageResult.FromMemory(File.ReadAllBytes(path), StbImageSharp.ColorComponents.RedGreenBlue);
        Assert.Equal((2 + 2 * 8, 2 + 3 * 6), (png.Width, png.Height));
        var src = images.data<byte>().ToArray();
        for (var b = 0; b < 5; b++)
            for (var c = 0; c < 3; c++)
                for (var y = 0; y < 4; y++)
                    for (var x = 0; x < 6; x++)
                    {
                        int gx = 2 + b % 2 * 8 + x, gy = 2 + b / 2 * 6 + y;
                        Assert.Equal(src[((b * 3 + c) * 4 + y) * 6 + x], png.Data[(gy * png.Width + gx) * 3 + c]);
                    }
        Assert.Equal(ImageGrid.GutterLevel, png.Data[0]);                                  // border
        Assert.Equal(ImageGrid.GutterLevel, png.Data[((2 + 2 * 6) * png.Width + 10) * 3]); // the empty sixth cell
        using var doc = JsonDocument.Parse(File.ReadAllText(tmp["out/grid.captions.json"]));
        var cell = doc.RootElement.GetProperty("cells")[3];
        Assert.Equal(("d", 1, 1), (cell.GetProperty("caption").GetString(), cell.GetProperty("row").GetInt32(), cell.GetProperty("column").GetInt32()));
        Assert.Empty(Directory.GetFiles(tmp["out"], "*.tmp-*"));
    }

    [Fact]
    public void WithoutAFontLabelsAreDrawnWithTheBuiltInBitmapFont()
    {
        // "l1" on a 20-pixel strip: lower case is drawn in capitals, glyphs start at the left gutter, 3 rows down.
        var strip = ImageGrid.LabelStrip(20, "l1", bitmapFont: true);
        Assert.Equal(20 * ImageGrid.LabelHeight, strip.Length);
        bool Lit(int x, int y) => strip[y * 20 + x] == 255;
        int left = ImageGrid.Gutter, top = (ImageGrid.LabelHeight - BitmapFont.Height) / 2;
        for (var y = 0; y < BitmapFont.Height; y++)
        {
            Assert.True(Lit(left, top + y), $"L's stem, row {y}");                                  // L: the left column all on
            Assert.Equal(y == BitmapFont.Height - 1, Lit(left + 4, top + y));                      // its right column only at the foot
            Assert.Equal(BitmapFont.On('1', 2, y), Lit(left + 6 + 2, top + y));                    // '1' drawn one advance later
        }
        Assert.False(BitmapFont.Has('\u00e9'));
        Assert.Equal(20, Enumerable.Range(0, BitmapFont.Width).Sum(x => Enumerable.Range(0, BitmapFont.Height).Count(y => BitmapFont.On('\u00e9', x, y))));  // a missing glyph: the hollow box's 20 border pixels
        Assert.All(Enumerable.Range(0, ImageGrid.LabelHeight), y => Assert.Equal(ImageGrid.GutterLevel, strip[y * 20]));   // the gutter stays gray
        // An over-long label is cut with "…": nothing lit in the last gutter column, and fewer glyphs than characters.
        var cut = ImageGrid.LabelStrip(40, "WWWWWWWWWWWWWWWWWWWW", bitmapFont: true);
        Assert.All(Enumerable.Range(0, ImageGrid.LabelHeight), y => Assert.NotEqual(255, cut[y * 40 + 39]));
        Assert.True(cut.Count(p => p == 255) > 20, "the cut label still shows its first glyphs");
    }

    [Fact]
    public void RowLabelsAreDrawnInAStripAboveEachRowAndMoveTheRowsDown()
    {
        using var tmp = new TempDir();
        using var images = full([4, 1, 5, 40], 7, dtype: ScalarType.Byte);          // 2 rows × 2 columns of dark 40×5 cells
        ImageGrid.SavePng(tmp["g.png"], images, columns: 2, captions: ["x", "x", "y", "y"], rowLabels: ["a red apple", "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"]);
        var png = ImageResult.FromMemory(File.ReadAllBytes(tmp["g.png"]));
        var strip = ImageGrid.LabelHeight;
        Assert.Equal((2 + 2 * 42, 2 + 2 * (5 + 2 + strip)), (png.Width, png.Height));
        byte At(int x, int y) => png.Data[y * png.Width + x];
        for (var row = 0; row < 2; row++)
        {
            var top = 2 + row * (5 + 2 + strip);
            Assert.Equal(7, At(2, top + strip));                                    // the row's first image starts under its strip
            Assert.Equal(7, At(2 + 42 + 39, top + strip + 4));                      // and the second cell's last pixel is still an image pixel
            var bright = Enumerable.Range(0, strip).Sum(y => Enumerable.Range(0, png.Width).Count(x => At(x, top + y) > 200));
            Assert.True(bright > 5, $"row {row}: no text drawn in its label strip ({bright} bright pixels)");
        }
        // The over-long label is cut to the grid's width: nothing is drawn past the right gutter.
        Assert.All(Enumerable.Range(0, strip), y => Assert.Equal(ImageGrid.GutterLevel, At(png.Width - 1, 2 + 5 + 2 + strip + y)));
        using var doc = JsonDocument.Parse(File.ReadAllText(tmp["g.captions.json"]));
        Assert.Equal(strip, doc.RootElement.GetProperty("label_height").GetInt32());
        Assert.Throws<ArgumentException>(() => ImageGrid.SavePng(tmp["bad.png"], images, columns: 2, rowLabels: ["only one"]));
    }

    [Fact]
    public void AGrayGridIsAGrayPngAndBadInputIsRejected()
    {
        using var tmp = new TempDir();
        using var images = arange(2 * 3 * 3, dtype: ScalarType.Byte).reshape(2, 1, 3, 3);
        ImageGrid.SavePng(tmp["g.png"], images, columns: 8);
        var png = ImageResult.FromMemory(File.ReadAllBytes(tmp["g.png"]));
        Assert.Equal(StbImageSharp.ColorComponents.Grey, png.SourceComp);
        Assert.Equal((2 + 2 * 5, 2 + 5), (png.Width, png.Height)); // columns capped at the image count
        Assert.Equal(9 + 4, png.Data[(2 + 1) * png.Width + 2 + 5 + 1]); // image 1, pixel (1, 1)
        Assert.False(File.Exists(tmp["g.captions.json"]));
        using var floats = zeros(1, 3, 2, 2);
        Assert.Throws<ArgumentException>(() => ImageGrid.SavePng(tmp["x.png"], floats, 1));
    }

    [Fact]
    public void WritingAGridLeavesNoTensorsBehind()
    {
        using var tmp = new TempDir();
        using var images = randint(0, 256, [3, 1, 4, 4], dtype: ScalarType.Byte);
        LeakCheck.AssertNoLeak(() => ImageGrid.SavePng(tmp["leak.png"], images, 2), what: "ImageGrid.SavePng");
    }
}
