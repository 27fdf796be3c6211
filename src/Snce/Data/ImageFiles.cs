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

    /// <summary>Decodes encoded image bytes (<paramref name="name"/> is used in error messages).</summary>
    public static RawImage Decode(byte[] encoded, string name)
    {
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

    /// <summary>Width, height and whether the file is gray, read from the header only; null when the header is not an image.</summary>
    public static (int Width, int Height, bool Gray)? Probe(string path)
    {
        try
        {
            using var fs = File.OpenRead(path);
            var info = ImageInfo.FromStream(fs);
            if (info is not { } i || i.Width < 1 || i.Height < 1) return null;
            return (i.Width, i.Height, i.ColorComponents is ColorComponents.Grey or ColorComponents.GreyAlpha);
        }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
        {
            return null;
        }
    }
}
