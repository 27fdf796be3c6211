using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>Which tokens of a grid are regenerated (true) and which are kept, row-major [GridHeight, GridWidth].</summary>
public sealed record TokenMask(bool[] Editable, int GridHeight, int GridWidth)
{
    /// <summary>Tokens T = H·W.</summary>
    public int Length => GridHeight * GridWidth;

    /// <summary>Tokens to regenerate.</summary>
    public int Count => Editable.Count(e => e);

    /// <summary>The mask as bool [T] on the CPU.</summary>
    public Tensor ToTensor() => tensor(Editable);

    /// <summary>Throws when there is nothing to regenerate or nothing to keep (an edit needs both).</summary>
    public TokenMask RequireEdit()
    {
        if (Count == 0) throw new ArgumentException($"the region covers none of the {GridHeight}x{GridWidth} tokens: nothing to regenerate (is the mask all black?)");
        if (Count == Length) throw new ArgumentException($"the region covers all {Length} tokens: nothing of the image is kept; that is plain sampling ('snce sample'), or give a smaller region");
        return this;
    }
}

/// <summary>
/// The pixel footprint of each token: which image pixels a token stands for, so that a pixel region can be mapped to
/// the token grid (<see cref="ToTokens"/>) and back (<see cref="ToPixels"/>).
/// </summary>
/// <remarks>
/// The tokenizer pads the image by edge replication from its side S to the work size (e.g. 28 → 32, <c>Pad</c> pixels
/// before) and downsamples by the stride s = work size / grid; token (r, c) is the s × s cell of the padded image at
/// rows r·s … r·s + s − 1, columns c·s … c·s + s − 1. In image pixels that is rows r·s − Pad … r·s + s − 1 − Pad,
/// clamped to 0 … S − 1 (padding repeats the edge pixels, so a cell in the padding stands for the edge it repeats).
/// <b>A token is regenerated when its footprint overlaps the region in at least one pixel.</b> The footprint is the
/// token's nominal cell, not the decoder's receptive field: decoded pixels next to the region can change a little even
/// though their tokens are kept exactly.
/// </remarks>
public sealed record TokenFootprint(int ImageSize, int Stride, int Pad, int GridHeight, int GridWidth)
{
    /// <summary>The footprint of a tokenizer's tokens.</summary>
    public static TokenFootprint Of(TokenizerConfig config) =>
        new(config.ImageSize, config.WorkSize / config.GridSize, (config.WorkSize - config.ImageSize) / 2, config.GridSize, config.GridSize);

    /// <summary>Image rows (or columns) first … last that grid row (or column) <paramref name="index"/> covers.</summary>
    public (int First, int Last) Span(int index) =>
        (Math.Clamp(index * Stride - Pad, 0, ImageSize - 1), Math.Clamp((index + 1) * Stride - 1 - Pad, 0, ImageSize - 1));

    /// <summary>Pixel region (ImageSize × ImageSize) → the tokens whose footprint overlaps it.</summary>
    public TokenMask ToTokens(PixelMask region)
    {
        region.RequireSize(ImageSize, ImageSize, "the region");
        var editable = new bool[GridHeight * GridWidth];
        for (var r = 0; r < GridHeight; r++)
        {
            var (y0, y1) = Span(r);
            for (var c = 0; c < GridWidth; c++)
            {
                var (x0, x1) = Span(c);
                for (var y = y0; y <= y1 && !editable[r * GridWidth + c]; y++)
                    for (var x = x0; x <= x1; x++)
                        if (region[x, y]) { editable[r * GridWidth + c] = true; break; }
            }
        }
        return new TokenMask(editable, GridHeight, GridWidth);
    }

    /// <summary>The pixels the editable tokens stand for (the union of their footprints), ImageSize × ImageSize.</summary>
    public PixelMask ToPixels(TokenMask tokens)
    {
        if (tokens.GridHeight != GridHeight || tokens.GridWidth != GridWidth)
            throw new ArgumentException($"a {tokens.GridHeight}x{tokens.GridWidth} token mask for a {GridHeight}x{GridWidth} grid");
        var px = new bool[ImageSize * ImageSize];
        for (var r = 0; r < GridHeight; r++)
            for (var c = 0; c < GridWidth; c++)
            {
                if (!tokens.Editable[r * GridWidth + c]) continue;
                var ((y0, y1), (x0, x1)) = (Span(r), Span(c));
                for (var y = y0; y <= y1; y++)
                    for (var x = x0; x <= x1; x++) px[y * ImageSize + x] = true;
            }
        return new PixelMask(px, ImageSize, ImageSize);
    }
}
