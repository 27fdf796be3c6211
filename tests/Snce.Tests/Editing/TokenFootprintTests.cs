using Snce.Editing;
using Snce.Tokenizer;

namespace Snce.Tests.Editing;

public class TokenFootprintTests
{
    // 32 px with two downsamples → 8×8 tokens of 4 px; one downsample → 16×16 tokens of 2 px; 28 px pads to 32 (2 px before).
    static TokenFootprint Grid(int imageSize, int[] multipliers) =>
        TokenFootprint.Of(new TokenizerConfig { ImageSize = imageSize, ChannelMultipliers = multipliers, BaseChannels = 8, NormGroups = 4 }.Validate());

    static TokenFootprint Grid8 => Grid(32, [1, 2, 2]);
    static TokenFootprint Grid16 => Grid(32, [1, 2]);

    static int[] Editable(TokenMask m) => Enumerable.Range(0, m.Length).Where(i => m.Editable[i]).ToArray();

    static int[] Cells(int gridWidth, int r0, int r1, int c0, int c1) =>
        (from r in Enumerable.Range(r0, r1 - r0 + 1) from c in Enumerable.Range(c0, c1 - c0 + 1) select r * gridWidth + c).ToArray();

    [Fact]
    public void TheGridsHaveTheExpectedStrideAndPadding()
    {
        Assert.Equal(new TokenFootprint(32, 4, 0, 8, 8), Grid8);
        Assert.Equal(new TokenFootprint(32, 2, 0, 16, 16), Grid16);
        Assert.Equal(new TokenFootprint(28, 8, 2, 4, 4), Grid(28, [1, 2, 2, 2]));
    }

    [Theory]
    // x, y, w, h → token rows r0..r1, columns c0..c1 (worked out by hand from the 4-px cells of the 8×8 grid)
    [InlineData(4, 4, 8, 8, 1, 2, 1, 2)]       // aligned to the cells: exactly 2×2 tokens
    [InlineData(3, 4, 2, 1, 1, 1, 0, 1)]       // columns 3..4 straddle the cells 0 and 1
    [InlineData(31, 31, 1, 1, 7, 7, 7, 7)]     // the last pixel: the last token
    [InlineData(0, 0, 32, 1, 0, 0, 0, 7)]      // one pixel row touches the whole first token row
    public void BoxesMapToTheOverlappingTokensOn8x8(int x, int y, int w, int h, int r0, int r1, int c0, int c1)
    {
        var m = Grid8.ToTokens(new EditRegion.Box(x, y, w, h).ToPixels(32, 32));
        Assert.Equal(Cells(8, r0, r1, c0, c1), Editable(m));
    }

    [Theory]
    [InlineData(4, 4, 8, 8, 2, 5, 2, 5)]       // 2-px cells: pixels 4..11 are cells 2..5
    [InlineData(5, 0, 1, 3, 0, 1, 2, 2)]       // column 5 is cell 2; rows 0..2 are cells 0..1
    [InlineData(30, 30, 2, 2, 15, 15, 15, 15)]
    public void BoxesMapToTheOverlappingTokensOn16x16(int x, int y, int w, int h, int r0, int r1, int c0, int c1)
    {
        var m = Grid16.ToTokens(new EditRegion.Box(x, y, w, h).ToPixels(32, 32));
        Assert.Equal(Cells(16, r0, r1, c0, c1), Editable(m));
    }

    [Fact]
    public void OutpaintingBandsMapToWholeTokenColumnsAndRows()
    {
        Assert.Equal(Cells(8, 0, 7, 4, 7), Editable(Grid8.ToTokens(new EditRegion.Outpaint(OutpaintSide.Right).ToPixels(32, 32))));
        Assert.Equal(Cells(8, 0, 7, 0, 1), Editable(Grid8.ToTokens(new EditRegion.Outpaint(OutpaintSide.Left, 0.25).ToPixels(32, 32))));
        Assert.Equal(Cells(16, 0, 3, 0, 15), Editable(Grid16.ToTokens(new EditRegion.Outpaint(OutpaintSide.Top, 0.25).ToPixels(32, 32))));
        Assert.Equal(Cells(16, 12, 15, 0, 15), Editable(Grid16.ToTokens(new EditRegion.Outpaint(OutpaintSide.Bottom, 0.25).ToPixels(32, 32))));
        // A band that ends inside a cell takes that whole cell: 3/8 of 32 px = 12 px on the right = columns 20..31 → cells 5..7 of 8.
        Assert.Equal(Cells(8, 0, 7, 5, 7), Editable(Grid8.ToTokens(new EditRegion.Outpaint(OutpaintSide.Right, 0.375).ToPixels(32, 32))));
        Assert.Equal(Cells(8, 0, 7, 4, 7), Editable(Grid8.ToTokens(new EditRegion.Outpaint(OutpaintSide.Right, 0.4).ToPixels(32, 32))));  // 13 px → columns 19..31
    }

    [Fact]
    public void PaddedImagesMapThroughTheirPadding()
    {
        // 28 px padded to 32 with 2 px before: token column c covers image columns 8c − 2 … 8c + 5, clamped to 0 … 27.
        var g = Grid(28, [1, 2, 2, 2]);
        Assert.Equal((0, 5), g.Span(0));
        Assert.Equal((6, 13), g.Span(1));
        Assert.Equal((22, 27), g.Span(3));
        Assert.Equal(Cells(4, 0, 3, 2, 3), Editable(g.ToTokens(new EditRegion.Outpaint(OutpaintSide.Right).ToPixels(28, 28))));   // columns 14..27
        // 16×16 tokens of 2 px on a 28-px image: row 0 lies wholly in the padding and stands for the edge row it repeats.
        var fine = Grid(28, [1, 2]);
        Assert.Equal(new TokenFootprint(28, 2, 2, 16, 16), fine);
        Assert.Equal((0, 0), fine.Span(0));
        Assert.Equal((27, 27), fine.Span(15));
        Assert.Equal(Cells(16, 0, 1, 0, 15), Editable(fine.ToTokens(new EditRegion.Box(0, 0, 28, 1).ToPixels(28, 28))));
    }

    [Theory]
    [InlineData(32, new[] { 1, 2, 2 })]
    [InlineData(32, new[] { 1, 2 })]
    [InlineData(28, new[] { 1, 2, 2, 2 })]
    public void RandomMasksMapToExactlyTheTokensWhoseFootprintTheyTouch(int size, int[] multipliers)
    {
        var g = Grid(size, multipliers);
        var rng = new Random(size * 7 + multipliers.Length);
        for (var trial = 0; trial < 20; trial++)
        {
            var density = rng.NextDouble() * 0.05;
            var px = Enumerable.Range(0, size * size).Select(_ => rng.NextDouble() < density).ToArray();
            var region = new PixelMask(px, size, size);
            var tokens = g.ToTokens(region);
            var covered = g.ToPixels(tokens);
            for (var i = 0; i < px.Length; i++)
                if (px[i]) Assert.True(covered.Pixels[i], $"pixel {i} of the region is not covered by a regenerated token");
            for (var t = 0; t < tokens.Length; t++)
            {
                var ((y0, y1), (x0, x1)) = (g.Span(t / g.GridWidth), g.Span(t % g.GridWidth));
                var touches = false;
                for (var y = y0; y <= y1; y++) for (var x = x0; x <= x1; x++) touches |= region[x, y];
                Assert.Equal(touches, tokens.Editable[t]);
            }
        }
    }

    [Fact]
    public void BadRegionsFailClearly()
    {
        Assert.Contains("reaches outside the 32x32 image", Assert.Throws<ArgumentException>(() => new EditRegion.Box(20, 0, 16, 4).ToPixels(32, 32)).Message);
        Assert.Contains("reaches outside", Assert.Throws<ArgumentException>(() => new EditRegion.Box(-1, 0, 4, 4).ToPixels(32, 32)).Message);
        Assert.Contains("is empty", Assert.Throws<ArgumentException>(() => new EditRegion.Box(0, 0, 0, 4).ToPixels(32, 32)).Message);
        Assert.Contains("fraction", Assert.Throws<ArgumentException>(() => new EditRegion.Outpaint(OutpaintSide.Left, 1.0).ToPixels(32, 32)).Message);
        var small = new PixelMask(new bool[16 * 16], 16, 16);
        Assert.Contains("16x16 pixels but the image is 32x32", Assert.Throws<ArgumentException>(() => new EditRegion.Mask(small).ToPixels(32, 32)).Message);
        var none = Grid8.ToTokens(new PixelMask(new bool[32 * 32], 32, 32));
        Assert.Contains("nothing to regenerate", Assert.Throws<ArgumentException>(() => none.RequireEdit()).Message);
        var all = Grid8.ToTokens(new PixelMask(Enumerable.Repeat(true, 32 * 32).ToArray(), 32, 32));
        Assert.Contains("nothing of the image is kept", Assert.Throws<ArgumentException>(() => all.RequireEdit()).Message);
        Assert.Contains("unknown outpainting side 'up'", Assert.Throws<ArgumentException>(() => OutpaintSides.Parse("up")).Message);
    }
}
