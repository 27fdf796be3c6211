using Snce.Data;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>
/// Reading the images of an edit (the source and its mask) through <see cref="ImageFiles"/>, so that every check the
/// loaders make applies, and drawing the side-by-side panel of an edit.
/// </summary>
public static class EditImages
{
    /// <summary>Mask pixels whose gray value is at least this are in the region (white = regenerate; transparency reads as white).</summary>
    public const byte MaskThreshold = 128;

    /// <summary>
    /// Reads the source image for a tokenizer of <paramref name="channels"/> × <paramref name="size"/>² and its mask, if any.
    /// Without <paramref name="fit"/> the image must already have that size and channel count; with it, the image is converted to
    /// the channels and center-cropped and resized (<see cref="RawImage.To"/>), and the mask the same way. The mask must
    /// have the source image's own size in either case.
    /// </summary>
    /// <returns>uint8 [C, S, S] and the mask (S × S), or null when no mask file was given.</returns>
    public static (Tensor Image, PixelMask? Mask) Load(string imagePath, string? maskPath, int channels, int size, bool fit)
    {
        var img = ImageFiles.Read(imagePath);
        RawImage? mask = maskPath is null ? null : ImageFiles.Read(maskPath).WithChannels(1);
        if (mask is not null && (mask.Width != img.Width || mask.Height != img.Height))
            throw new ArgumentException($"the mask {maskPath} is {mask.Width}x{mask.Height} pixels but the image {imagePath} is {img.Width}x{img.Height}; give a mask of the image's size");
        if (!fit)
        {
            if (img.Width != size || img.Height != size)
                throw new ArgumentException($"{imagePath} is {img.Width}x{img.Height} pixels but the tokenizer takes {size}x{size}; resize it, or pass --fit (center square crop + resize)");
            if (img.Channels != channels)
                throw new ArgumentException($"{imagePath} has {Describe(img.Channels)} but the tokenizer takes {Describe(channels)}; convert it, or pass --fit");
        }
        else
        {
            img = img.To(channels, size);
            mask = mask?.To(1, size);
        }
        var chw = new byte[img.Pixels.Length];
        img.CopyPlanarTo(chw);
        var image = tensor(chw, [img.Channels, img.Height, img.Width], ScalarType.Byte);
        return (image, mask is null ? null : new PixelMask(mask.Pixels.Select(p => p >= MaskThreshold).ToArray(), mask.Width, mask.Height));
    }

    static string Describe(int channels) => channels == 1 ? "1 channel (gray)" : $"{channels} channels (RGB)";

    /// <summary>
    /// One row for <see cref="ImageGrid"/>: the source, the source with the regenerated pixels tinted red, then the results;
    /// uint8 [2 + N, 3, S, S] (gray images are repeated into RGB so that the tint shows).
    /// </summary>
    public static Tensor Panel(Tensor source, PixelMask regenerated, Tensor results)
    {
        using var scope = NewDisposeScope();
        var src = source.unsqueeze(0);
        return cat([Rgb(src), Overlay(src, regenerated), Rgb(results)], 0).MoveToOuterDisposeScope();
    }

    /// <summary>One row for <see cref="ImageGrid"/>: the source image [C, S, S], then the results [N, C, S, S]; uint8 [1 + N, 3, S, S].</summary>
    public static Tensor Row(Tensor source, Tensor results)
    {
        using var scope = NewDisposeScope();
        return cat([Rgb(source.unsqueeze(0)), Rgb(results)], 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Three rows of N cells for <see cref="ImageGrid"/> with N columns: the sources, the sources with the regenerated pixels
    /// tinted, and the results; uint8 [3N, 3, S, S]. The same sources and seed give grids to compare runs side by side.
    /// </summary>
    public static Tensor Comparison(Tensor sources, PixelMask regenerated, Tensor results)
    {
        using var scope = NewDisposeScope();
        return cat([Rgb(sources), Overlay(sources, regenerated), Rgb(results)], 0).MoveToOuterDisposeScope();
    }

    /// <summary>uint8 [N, 1|3, S, S] → uint8 [N, 3, S, S].</summary>
    static Tensor Rgb(Tensor images) => images.shape[1] == 1 ? images.expand(-1, 3, -1, -1) : images;

    /// <summary>Images with the masked pixels blended half-way to red: uint8 [N, 3, S, S].</summary>
    static Tensor Overlay(Tensor images, PixelMask regenerated)
    {
        using var scope = NewDisposeScope();
        var m = tensor(regenerated.Pixels).view(1, 1, regenerated.Height, regenerated.Width).to_type(ScalarType.Float32).to(images.device);
        var red = tensor(new float[] { 255, 0, 0 }).view(1, 3, 1, 1).to(images.device);
        var blended = Rgb(images).to_type(ScalarType.Float32) * (1 - 0.5f * m) + red * (0.5f * m);
        return blended.round().clamp(0, 255).to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
