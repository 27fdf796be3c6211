namespace Snce.Editing;

/// <summary>Which border an outpainting region lies along.</summary>
public enum OutpaintSide
{
    /// <summary>The left columns.</summary>
    Left,
    /// <summary>The right columns.</summary>
    Right,
    /// <summary>The top rows.</summary>
    Top,
    /// <summary>The bottom rows.</summary>
    Bottom,
}

/// <summary>Parses the command line's outpainting sides.</summary>
public static class OutpaintSides
{
    /// <summary>The accepted names.</summary>
    public const string Allowed = "left, right, top, bottom";

    /// <summary>left | right | top | bottom → side; throws naming the allowed values.</summary>
    public static OutpaintSide Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "left" => OutpaintSide.Left,
        "right" => OutpaintSide.Right,
        "top" => OutpaintSide.Top,
        "bottom" => OutpaintSide.Bottom,
        _ => throw new ArgumentException($"unknown outpainting side '{name}'; use one of {Allowed}"),
    };
}

/// <summary>A binary pixel mask, row-major [Height, Width]: true = to be regenerated.</summary>
public sealed record PixelMask(bool[] Pixels, int Width, int Height)
{
    /// <summary>Pixels in the region.</summary>
    public int Count => Pixels.Count(p => p);

    /// <summary>Whether pixel (x, y) is in the region.</summary>
    public bool this[int x, int y] => Pixels[y * Width + x];

    /// <summary>Throws naming the sizes when the mask is not <paramref name="width"/> × <paramref name="height"/>.</summary>
    public PixelMask RequireSize(int width, int height, string what = "the mask") =>
        Width == width && Height == height ? this
            : throw new ArgumentException($"{what} is {Width}x{Height} pixels but the image is {width}x{height}; give a mask of the image's size (or let 'snce edit --fit' resize both)");
}

/// <summary>
/// Where to edit an image, in pixels: a mask, a box, or a band along one border (outpainting). <see cref="ToPixels"/>
/// turns it into a <see cref="PixelMask"/> of the image's size; <see cref="TokenFootprint"/> maps that to the token grid.
/// </summary>
public abstract record EditRegion
{
    /// <summary>The region as a mask of a <paramref name="width"/> × <paramref name="height"/> image; throws when it does not fit.</summary>
    public abstract PixelMask ToPixels(int width, int height);

    /// <summary>Every pixel where the mask is true (the mask must have the image's size).</summary>
    public sealed record Mask(PixelMask Pixels) : EditRegion
    {
        /// <inheritdoc/>
        public override PixelMask ToPixels(int width, int height) => Pixels.RequireSize(width, height);
    }

    /// <summary>The pixels x ≤ X &lt; x + W, y ≤ Y &lt; y + H (origin top left); the box must lie inside the image.</summary>
    public sealed record Box(int X, int Y, int W, int H) : EditRegion
    {
        /// <inheritdoc/>
        public override PixelMask ToPixels(int width, int height)
        {
            if (W < 1 || H < 1) throw new ArgumentException($"box {X},{Y},{W},{H} is empty: width and height must be at least 1 pixel");
            if (X < 0 || Y < 0 || X + W > width || Y + H > height)
                throw new ArgumentException($"box {X},{Y},{W},{H} (x,y,w,h) reaches outside the {width}x{height} image; it must satisfy 0 ≤ x, 0 ≤ y, x + w ≤ {width}, y + h ≤ {height}");
            var px = new bool[width * height];
            for (var y = Y; y < Y + H; y++)
                for (var x = X; x < X + W; x++) px[y * width + x] = true;
            return new PixelMask(px, width, height);
        }
    }

    /// <summary>
    /// The band along <paramref name="Side"/> covering <paramref name="Fraction"/> of the image's width (left/right) or height
    /// (top/bottom), rounded to whole pixels (at least one): everything else is the context the generator continues.
    /// </summary>
    public sealed record Outpaint(OutpaintSide Side, double Fraction = 0.5) : EditRegion
    {
        /// <inheritdoc/>
        public override PixelMask ToPixels(int width, int height)
        {
            if (!(Fraction > 0 && Fraction < 1)) throw new ArgumentException($"the outpainting fraction must be in (0, 1), got {Fraction}");
            var across = Side is OutpaintSide.Left or OutpaintSide.Right ? width : height;
            var band = Math.Clamp((int)Math.Round(Fraction * across), 1, across);
            var (x, y, w, h) = Side switch
            {
                OutpaintSide.Left => (0, 0, band, height),
                OutpaintSide.Right => (width - band, 0, band, height),
                OutpaintSide.Top => (0, 0, width, band),
                OutpaintSide.Bottom => (0, height - band, width, band),
                _ => throw new ArgumentOutOfRangeException(nameof(Side), Side, null),
            };
            return new Box(x, y, w, h).ToPixels(width, height);
        }
    }
}
