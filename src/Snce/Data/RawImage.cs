namespace Snce.Data;

/// <summary>
/// One 8-bit image in memory, interleaved [H, W, C] (C = 1 gray or 3 RGB), and the pixel operations every
/// loader shares: channel conversion, center square crop and resize. One formula each, used by image folders,
/// single files and built-in data sets alike.
/// </summary>
public sealed record RawImage(byte[] Pixels, int Width, int Height, int Channels)
{
    /// <summary>RGBA (or gray+alpha when <paramref name="gray"/>) composited onto white: out = (c·a + 255·(255 − a)) / 255, rounded.</summary>
    public static RawImage FromRgbaOnWhite(ReadOnlySpan<byte> rgba, int width, int height, bool gray)
    {
        var c = gray ? 1 : 3;
        var px = new byte[width * height * c];
        for (int i = 0, n = width * height; i < n; i++)
        {
            int a = rgba[4 * i + 3];
            for (var k = 0; k < c; k++)
                px[i * c + k] = (byte)((rgba[4 * i + k] * a + 255 * (255 - a) + 127) / 255);
        }
        return new RawImage(px, width, height, c);
    }

    /// <summary>
    /// <see cref="WithChannels"/> and <see cref="CenterCropResize"/> in the cheaper order (gray before resizing,
    /// RGB after); the result is the same up to rounding.
    /// </summary>
    public RawImage To(int channels, int size) =>
        channels < Channels ? WithChannels(channels).CenterCropResize(size) : CenterCropResize(size).WithChannels(channels);

    /// <summary>Same image with 1 or 3 channels: gray → RGB repeats the value; RGB → gray is ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B).</summary>
    public RawImage WithChannels(int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"channels must be 1 or 3, got {channels}");
        if (channels == Channels) return this;
        var n = Width * Height;
        var px = new byte[n * channels];
        if (channels == 3)
            for (var i = 0; i < n; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = Pixels[i];
        else
            for (var i = 0; i < n; i++)
                px[i] = (byte)Math.Clamp((int)Math.Round(0.299 * Pixels[3 * i] + 0.587 * Pixels[3 * i + 1] + 0.114 * Pixels[3 * i + 2]), 0, 255);
        return new RawImage(px, Width, Height, channels);
    }

    /// <summary>
    /// The centered square of side min(W, H), resized to size × size: area averaging when shrinking (each output
    /// pixel is the coverage-weighted mean of the source pixels it spans), bilinear when enlarging (pixel centers,
    /// edges clamped). A square image of the requested size comes back unchanged.
    /// </summary>
    public RawImage CenterCropResize(int size)
    {
        if (size < 1) throw new ArgumentException($"image size must be positive, got {size}");
        var side = Math.Min(Width, Height);
        int x0 = (Width - side) / 2, y0 = (Height - side) / 2;
        if (side == size && Width == Height) return this;
        var taps = TapCache.GetOrAdd((side, size), k => Taps(k.In, k.Out));
        // Horizontal pass: [H_src rows of the crop, size, C] in float, then vertical: [size, size, C].
        var c = Channels;
        var tmp = new float[side * size * c];
        for (var y = 0; y < side; y++)
        {
            var row = (y0 + y) * Width;
            for (var x = 0; x < size; x++)
                foreach (var (src, w) in taps[x])
                    for (var k = 0; k < c; k++)
                        tmp[(y * size + x) * c + k] += w * Pixels[(row + x0 + src) * c + k];
        }
        var px = new byte[size * size * c];
        for (var y = 0; y < size; y++)
            for (var x = 0; x < size; x++)
                for (var k = 0; k < c; k++)
                {
                    var v = 0f;
                    foreach (var (src, w) in taps[y]) v += w * tmp[(src * size + x) * c + k];
                    px[(y * size + x) * c + k] = (byte)Math.Clamp((int)MathF.Round(v), 0, 255);
                }
        return new RawImage(px, size, size, c);
    }

    /// <summary>Copies the pixels into <paramref name="chw"/> in planar [C, H, W] order.</summary>
    public void CopyPlanarTo(Span<byte> chw)
    {
        var n = Width * Height;
        for (var k = 0; k < Channels; k++)
            for (var i = 0; i < n; i++) chw[k * n + i] = Pixels[i * Channels + k];
    }

    /// <summary>An image from planar [C, H, W] bytes.</summary>
    public static RawImage FromPlanar(ReadOnlySpan<byte> chw, int channels, int height, int width)
    {
        var n = width * height;
        var px = new byte[n * channels];
        for (var k = 0; k < channels; k++)
            for (var i = 0; i < n; i++) px[i * channels + k] = chw[k * n + i];
        return new RawImage(px, width, height, channels);
    }

    static readonly System.Collections.Concurrent.ConcurrentDictionary<(int In, int Out), (int Src, float W)[][]> TapCache = new();

    /// <summary>For each output index along one axis, the source indices and weights (summing to 1).</summary>
    static (int Src, float W)[][] Taps(int inLen, int outLen)
    {
        var scale = (double)inLen / outLen;
        var taps = new (int, float)[outLen][];
        for (var o = 0; o < outLen; o++)
        {
            var list = new List<(int, float)>();
            if (scale > 1)
            {
                double lo = o * scale, hi = (o + 1) * scale;
                for (var s = (int)Math.Floor(lo); s < Math.Min(inLen, (int)Math.Ceiling(hi)); s++)
                {
                    var overlap = Math.Min(hi, s + 1) - Math.Max(lo, s);
                    if (overlap > 1e-9) list.Add((s, (float)(overlap / scale)));
                }
            }
            else
            {
                var center = Math.Clamp((o + 0.5) * scale - 0.5, 0, inLen - 1);
                var s0 = (int)Math.Floor(center);
                var f = center - s0;
                list.Add((s0, (float)(1 - f)));
                if (f > 0 && s0 + 1 < inLen) list.Add((s0 + 1, (float)f));
            }
            taps[o] = [.. list];
        }
        return taps;
    }
}
