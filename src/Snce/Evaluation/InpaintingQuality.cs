using Snce.Editing;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>Inpainting scores of a set of edited images, each a mean over the images.</summary>
/// <param name="N">images edited.</param>
/// <param name="RegionPixels">pixels in the region (per image).</param>
/// <param name="RegionTokens">tokens regenerated (per image) out of <paramref name="Tokens"/>.</param>
/// <param name="Tokens">tokens per image.</param>
/// <param name="PsnrInRegion">PSNR (dB) of the edited image against the original, inside the pixel region.</param>
/// <param name="L1InRegion">mean |edited − original| inside the pixel region, pixel values in [0, 1].</param>
/// <param name="ReconstructionPsnrInRegion">the same PSNR for the tokenizer's reconstruction of the original (the source tokens decoded): the ceiling.</param>
/// <param name="ReconstructionL1InRegion">the same L1 for that reconstruction.</param>
/// <param name="TokensChangedOutside">tokens outside the region that differ from the source, over all images (0 by construction).</param>
/// <param name="TokensChangedInside">share of the region's tokens whose id differs from the source's.</param>
public sealed record InpaintingScores(int N, int RegionPixels, int RegionTokens, int Tokens, double PsnrInRegion, double L1InRegion,
    double ReconstructionPsnrInRegion, double ReconstructionL1InRegion, long TokensChangedOutside, double TokensChangedInside);

/// <summary>PSNR and L1 restricted to a pixel region, and the token-level scores of an <see cref="InpaintingResult"/>.</summary>
public static class InpaintingQuality
{
    /// <summary>
    /// PSNR = 10·log10(1 / MSE) per image over the region's pixels (all channels), x and y uint8 [N, C, H, W] scaled to
    /// [0, 1] → [N] (float32); MSE floored at <see cref="ReconstructionQuality.MseFloor"/>.
    /// </summary>
    public static Tensor Psnr(Tensor x, Tensor y, PixelMask region)
    {
        using var scope = NewDisposeScope();
        var mse = (Difference(x, y, region).square().sum([1L, 2L, 3L]) / Weight(x, region));
        return mse.clamp_min(ReconstructionQuality.MseFloor).log10().mul(-10).MoveToOuterDisposeScope();
    }

    /// <summary>Mean absolute difference per image over the region's pixels, values in [0, 1] → [N] (float32).</summary>
    public static Tensor L1(Tensor x, Tensor y, PixelMask region)
    {
        using var scope = NewDisposeScope();
        return (Difference(x, y, region).abs().sum([1L, 2L, 3L]) / Weight(x, region)).MoveToOuterDisposeScope();
    }

    /// <summary>The scores of <paramref name="result"/> against the <paramref name="originals"/> uint8 [N, C, H, W] in <paramref name="region"/>.</summary>
    public static InpaintingScores Score(InpaintingResult result, Tensor originals, PixelMask region)
    {
        using var scope = NewDisposeScope();
        var n = (int)originals.shape[0];
        var inside = result.ChangedInside().to_type(ScalarType.Float64).sum().item<double>() / ((double)n * result.Region.Count);
        return new InpaintingScores(n, region.Count, result.Region.Count, result.Region.Length,
            Psnr(result.Images, originals, region).mean().item<float>(), L1(result.Images, originals, region).mean().item<float>(),
            Psnr(result.Reconstructions, originals, region).mean().item<float>(), L1(result.Reconstructions, originals, region).mean().item<float>(),
            result.ChangedOutside(), inside);
    }

    /// <summary>(x − y)/255 where the mask is true, 0 elsewhere: [N, C, H, W] float32.</summary>
    static Tensor Difference(Tensor x, Tensor y, PixelMask region)
    {
        if (!x.shape.SequenceEqual(y.shape) || x.dim() != 4)
            throw new ArgumentException($"image sets differ in shape: [{string.Join(", ", x.shape)}] vs [{string.Join(", ", y.shape)}]");
        region.RequireSize((int)x.shape[3], (int)x.shape[2], "the region");
        if (region.Count == 0) throw new ArgumentException("the region has no pixels to score");
        var m = tensor(region.Pixels).view(1, 1, region.Height, region.Width).to(x.device);
        return (x.to_type(ScalarType.Float32) - y.to_type(ScalarType.Float32)).div_(255).mul_(m);
    }

    static double Weight(Tensor x, PixelMask region) => (double)region.Count * x.shape[1];
}
