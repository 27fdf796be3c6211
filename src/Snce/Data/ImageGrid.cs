using System.Text.Json;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>PNG grids of images (samples, reconstructions) for people to look at.</summary>
public static class ImageGrid
{
    /// <summary>Pixels between cells and around the grid.</summary>
    public const int Gutter = 2;
    /// <summary>Gutter gray level: mid-gray separates both dark (MNIST) and white-background (emoji) cells.</summary>
    public const byte GutterLevel = 128;

    /// <summary>
    /// Writes uint8 [B, C, H, W] images (C = 1 or 3) as one PNG, row by row, <paramref name="columns"/> per row, with
    /// <see cref="Gutter"/>-pixel gutters; image b sits at x = 2 + (b % columns)·(W + 2), y = 2 + (b / columns)·(H + 2).
    /// With <paramref name="captions"/> (one per image) a sidecar <c>NAME.captions.json</c> lists each cell's row, column
    /// and caption. With <paramref name="rowLabels"/> (one per row; text-to-image grids have one prompt per row) each row
    /// gets a <see cref="LabelHeight"/>-pixel strip above it with its label drawn in white (cut with "…" to the grid's
    /// width), and rows move down by that strip. Both files are written atomically.
    /// </summary>
    public static void SavePng(string path, Tensor uint8Images, int columns, string[]? captions = null, string[]? rowLabels = null)
    {
        if (uint8Images.dtype != ScalarType.Byte || uint8Images.dim() != 4 || uint8Images.shape[1] is not (1 or 3))
            throw new ArgumentException($"ImageGrid wants uint8 [B, 1|3, H, W] images, got {uint8Images.dtype} [{string.Join(", ", uint8Images.shape)}]");
        var (b, c, h, w) = ((int)uint8Images.shape[0], (int)uint8Images.shape[1], (int)uint8Images.shape[2], (int)uint8Images.shape[3]);
        if (b < 1) throw new ArgumentException("ImageGrid needs at least one image");
        if (columns < 1) throw new ArgumentException($"columns must be at least 1, got {columns}");
        if (captions is not null && captions.Length != b) throw new ArgumentException($"{captions.Length} captions for {b} images");
        columns = Math.Min(columns, b);
        var rows = (b + columns - 1) / columns;
        if (rowLabels is not null && rowLabels.Length != rows) throw new ArgumentException($"{rowLabels.Length} row labels for {rows} rows of {columns}");
        var strip = rowLabels is null ? 0 : LabelHeight;
        int width = Gutter + columns * (w + Gutter), height = Gutter + rows * (h + Gutter + strip);

        byte[] src;
        using (var scope = NewDisposeScope()) src = uint8Images.detach().cpu().contiguous().bytes.ToArray();
        var grid = new byte[width * height * c];
        Array.Fill(grid, GutterLevel);
        for (var i = 0; i < b; i++)
        {
            var img = RawImage.FromPlanar(src.AsSpan(i * c * h * w, c * h * w), c, h, w);
            int x0 = Gutter + i % columns * (w + Gutter), y0 = Gutter + i / columns * (h + Gutter + strip) + strip;
            for (var y = 0; y < h; y++)
                Array.Copy(img.Pixels, y * w * c, grid, ((y0 + y) * width + x0) * c, w * c);
        }
        for (var r = 0; r < (rowLabels?.Length ?? 0); r++)
            DrawLabel(grid, width, c, Gutter + r * (h + Gutter + strip), rowLabels![r]);
        WritePng(path, grid, width, height, c);
        if (captions is null) return;
        var cells = captions.Select((text, i) => new { index = i, row = i / columns, column = i % columns, caption = text });
        AtomicFile.WriteAllText(Path.ChangeExtension(path, null) + ".captions.json",
            JsonSerializer.Serialize(new { image = Path.GetFileName(path), columns, rows, cell_width = w, cell_height = h, gutter = Gutter, label_height = strip, cells },
                new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Height in pixels of the label strip above each row when row labels are drawn.</summary>
    public const int LabelHeight = 14;

    /// <summary>
    /// A typeface that renders: the system default, or where the machine has no fonts (seen on the GPU machine) the .ttf
    /// <see cref="FontFiles"/> finds; null when there is none (labels then use the built-in <see cref="BitmapFont"/>).
    /// </summary>
    static readonly Lazy<SkiaSharp.SKTypeface?> Typeface = new(() =>
    {
        if (FontFiles.Chosen is { } chosen && File.Exists(chosen)) return SkiaSharp.SKTypeface.FromFile(chosen);
        if (SkiaSharp.SKFontManager.Default.FontFamilyCount > 0) return SkiaSharp.SKTypeface.Default;
        return FontFiles.FindInstalled() is { } file ? SkiaSharp.SKTypeface.FromFile(file) : null;
    });

    /// <summary>Draws <paramref name="text"/> in white into the strip of <see cref="LabelHeight"/> rows at <paramref name="top"/>.</summary>
    static void DrawLabel(byte[] grid, int width, int channels, int top, string text)
    {
        if (text.Length == 0) return;
        var pixels = LabelStrip(width, text);
        for (var y = 0; y < LabelHeight; y++)
            for (var x = 0; x < width; x++)
                for (var ch = 0; ch < channels; ch++)
                    grid[((top + y) * width + x) * channels + ch] = pixels[y * width + x];
    }

    /// <summary>
    /// One label strip: <paramref name="width"/> × <see cref="LabelHeight"/> gray pixels (row-major) of <see cref="GutterLevel"/>
    /// with <paramref name="text"/> in white from the left gutter, cut with "…" to fit. Drawn with the typeface found (the system's,
    /// <c>SNCE_FONT</c>'s or an installed .ttf), or with the built-in <see cref="BitmapFont"/> when there is none or
    /// <paramref name="bitmapFont"/> asks for it.
    /// </summary>
    public static byte[] LabelStrip(int width, string text, bool bitmapFont = false)
    {
        var strip = new byte[width * LabelHeight];
        Array.Fill(strip, GutterLevel);
        if (bitmapFont || Typeface.Value is not { } typeface)
        {
            var fitted = text;
            while (fitted.Length > 1 && BitmapFont.MeasureWidth(fitted) - 1 > width - 2 * Gutter) fitted = fitted[..^2] + "…";
            BitmapFont.Draw(strip, width, LabelHeight, Gutter, (LabelHeight - BitmapFont.Height) / 2, fitted);
            return strip;
        }
        using var bitmap = new SkiaSharp.SKBitmap(width, LabelHeight, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque);
        bitmap.Erase(new SkiaSharp.SKColor(GutterLevel, GutterLevel, GutterLevel));
        using (var canvas = new SkiaSharp.SKCanvas(bitmap))
        using (var font = new SkiaSharp.SKFont(typeface, LabelHeight - 3))
        using (var paint = new SkiaSharp.SKPaint { Color = SkiaSharp.SKColors.White, IsAntialias = true })
        {
            var fitted = text;
            while (fitted.Length > 1 && font.MeasureText(fitted) > width - 2 * Gutter) fitted = fitted[..^2] + "…";
            canvas.DrawText(fitted, Gutter, LabelHeight - 3, SkiaSharp.SKTextAlign.Left, font, paint);
        }
        var pixels = bitmap.Bytes;                                              // Gray8, row stride = RowBytes
        for (var y = 0; y < LabelHeight; y++)
            Array.Copy(pixels, y * bitmap.RowBytes, strip, y * width, width);
        return strip;
    }

    /// <summary>Writes one uint8 [C, H, W] image (C = 1 or 3) as a PNG of exactly W × H pixels (no gutter), atomically.</summary>
    public static void SaveSinglePng(string path, Tensor uint8Image)
    {
        if (uint8Image.dtype != ScalarType.Byte || uint8Image.dim() != 3 || uint8Image.shape[0] is not (1 or 3))
            throw new ArgumentException($"SaveSinglePng wants a uint8 [1|3, H, W] image, got {uint8Image.dtype} [{string.Join(", ", uint8Image.shape)}]");
        var (c, h, w) = ((int)uint8Image.shape[0], (int)uint8Image.shape[1], (int)uint8Image.shape[2]);
        byte[] src;
        using (var scope = NewDisposeScope()) src = uint8Image.detach().cpu().contiguous().bytes.ToArray();
        WritePng(path, RawImage.FromPlanar(src, c, h, w).Pixels, w, h, c);
    }

    static void WritePng(string path, byte[] interleaved, int width, int height, int channels) =>
        AtomicFile.Write(path, tmp =>
        {
            using var fs = File.Create(tmp);
            new ImageWriter().WritePng(interleaved, width, height, channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue, fs);
        });
}
