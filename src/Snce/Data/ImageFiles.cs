using StbImageSharp;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>
/// Decoding single image files (PNG, JPEG; also BMP, GIF, TGA through stb_image) into 8-bit gray or RGB,
/// with any alpha channel composited onto white.
/// </summary>
public static class ImageFiles
{
    /// <summary>
    /// Reads one image as uint8 [C, H, W]. <paramref name="channels"/>: 1 or 3 (default: 1 for gray files, 3 otherwise);
    /// <paramref name="size"/>: center square crop resized to size × size (default: the file's own size, uncropped).
    /// </summary>
    public static Tensor Load(string path, int? channels = null, int? size = null)
    {
        var img = Read(path);
        if (size is { } s) img = img.To(channels ?? img.Channels, s);
        else if (channels is { } c) img = img.WithChannels(c);
        var chw = new byte[img.Pixels.Length];
        img.CopyPlanarTo(chw);
        return tensor(chw, [img.Channels, img.Height, img.Width], ScalarType.Byte);
    }

    /// <summary>Decodes a file; throws <see cref="InvalidDataException"/> naming the file when it is not a readable image.</summary>
    public static RawImage Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such image file: {path}", path);
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>
    /// The most pixels (width × height) an image may have: 8192 × 8192 = 67,108,864. Decoding holds 4 bytes per pixel
    /// (RGBA), so the largest image accepted takes 256 MiB while decoding; far larger than any training image (28–256 px),
    /// small enough that a crafted header cannot exhaust memory. Checked from the header, before decoding.
    /// </summary>
    public const long MaxPixels = 8192L * 8192;

    /// <summary>Throws naming the file when a header's size is over <see cref="MaxPixels"/>.</summary>
    public static void CheckSize(long width, long height, string name)
    {
        if (width * height > MaxPixels)
            throw new InvalidDataException($"{name}: image too large ({width}×{height} = {width * height:N0} pixels > the limit of {MaxPixels:N0}, 8192×8192); shrink it first");
    }

    /// <summary>Decodes encoded image bytes (<paramref name="name"/> is used in error messages).</summary>
    public static RawImage Decode(byte[] encoded, string name)
    {
        if (Header(encoded) is { } header) CheckSize(header.Width, header.Height, name);
        ImageResult result;
        try
        {
            result = ImageResult.FromMemory(encoded, ColorComponents.RedGreenBlueAlpha);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // stb_image reports decoding failures as plain Exceptions ("unknown image type", "bad header", ...),
            // and a truncated file can surface as an index error: all of them mean "not a readable image".
            throw new InvalidDataException($"{name}: not a readable image ({e.Message})", e);
        }
        if (result.Width < 1 || result.Height < 1)
            throw new InvalidDataException($"{name}: image has no pixels");
        var gray = result.SourceComp is ColorComponents.Grey or ColorComponents.GreyAlpha;
        return RawImage.FromRgbaOnWhite(result.Data, result.Width, result.Height, gray);
    }

    /// <summary>
    /// Width, height and whether the file is gray, read from the header only; null when the header is not an image.
    /// A PNG whose size is over what stb_image accepts still reports its size (so the caller can say "too large").
    /// </summary>
    public static (int Width, int Height, bool Gray)? Probe(string path)
    {
        try
        {
            var head = new byte[64 * 1024];
            int read;
            using (var fs = File.OpenRead(path)) read = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return Header(head.AsSpan(0, read).ToArray());
        }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Size and grayness from the first bytes of an encoded image: the PNG IHDR chunk itself, else stb_image's header reader.</summary>
    static (int Width, int Height, bool Gray)? Header(byte[] encoded)
    {
        ReadOnlySpan<byte> png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        if (encoded.Length >= 26 && encoded.AsSpan(0, 8).SequenceEqual(png) && encoded.AsSpan(12, 4).SequenceEqual("IHDR"u8))
        {
            var w = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(encoded.AsSpan(16));
            var h = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(encoded.AsSpan(20));
            if (w < 1 || h < 1) return null;
            return (w, h, encoded[25] is 0 or 4);                      // color type 0 gray, 4 gray + alpha
        }
        try
        {
            using var ms = new MemoryStream(encoded, writable: false);
            var info = ImageInfo.FromStream(ms);
            if (info is not { } i || i.Width < 1 || i.Height < 1) return null;
            return (i.Width, i.Height, i.ColorComponents is ColorComponents.Grey or ColorComponents.GreyAlpha);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }
}
