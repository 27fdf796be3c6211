using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>How close a set of predicted targets is to the ground truth, each a mean over the pairs.</summary>
/// <param name="Psnr">PSNR (dB) over all pixels and channels, pixel values in [0, 1].</param>
/// <param name="Ssim">SSIM (Wang et al. 2004: Gaussian window 11, σ 1.5, K₁ 0.01, K₂ 0.03), mean over channels and window positions.</param>
/// <param name="L1">mean |prediction − target|, pixel values in [0, 1].</param>
/// <param name="TokenAccuracy">share of token positions whose id equals the target image's token.</param>
public sealed record TranslationScores(double Psnr, double Ssim, double L1, double TokenAccuracy);

/// <summary>
/// Image-to-image scores against a ground-truth target: PSNR, SSIM, L1 (per image, uint8 [N, C, H, W] scaled to [0, 1]) and
/// target-token accuracy (ids [N, T]).
/// </summary>
/// <remarks>
/// SSIM follows Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from error visibility to structural similarity"
/// (IEEE TIP 2004) with its reference settings: per channel, local means, variances and covariance under a normalized 11×11
/// Gaussian window (σ = 1.5) at every position where the window fits inside the image ("valid"), with C₁ = (0.01·L)², C₂ = (0.03·L)²,
/// L = 1; SSIM(x, y) = (2μₓμᵧ + C₁)(2σₓᵧ + C₂) / ((μₓ² + μᵧ² + C₁)(σₓ² + σᵧ² + C₂)), averaged over positions and channels.
/// Images smaller than the window use a window of their own side (odd, σ scaled by side/11).
/// </remarks>
public static class TranslationQuality
{
    /// <summary>SSIM's window side and Gaussian σ, and its constants K₁, K₂ (for L = 1).</summary>
    public const int SsimWindow = 11;
    /// <summary>The Gaussian window's σ.</summary>
    public const double SsimSigma = 1.5;
    /// <summary>SSIM's stabilizing constants K₁ and K₂ (C = (K·L)², L = 1).</summary>
    public const double SsimK1 = 0.01, SsimK2 = 0.03;

    /// <summary>PSNR = 10·log10(1 / MSE) per image over all pixels and channels → [N] (float32); MSE floored at <see cref="ReconstructionQuality.MseFloor"/>.</summary>
    public static Tensor Psnr(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Scaled(x, y);
        return ReconstructionQuality.Psnr(a, b).MoveToOuterDisposeScope();
    }

    /// <summary>Mean absolute difference per image, values in [0, 1] → [N] (float32).</summary>
    public static Tensor L1(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        return Difference(x, y).abs().mean([1L, 2L, 3L]).MoveToOuterDisposeScope();
    }

    /// <summary>SSIM per image (see the remarks) of uint8 [N, C, H, W] images → [N] (float32); 1 for identical images.</summary>
    public static Tensor Ssim(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Scaled(x, y);
        var side = (int)Math.Min(SsimWindow, Math.Min(x.shape[2], x.shape[3]));
        if (side % 2 == 0) side--;
        return ReconstructionQuality.Ssim(a, b, side, SsimSigma * side / SsimWindow).MoveToOuterDisposeScope();
    }

    /// <summary>The normalized side × side Gaussian window of SSIM (sums to 1), float32 [side, side].</summary>
    public static Tensor GaussianWindow(int side, double sigma) => ReconstructionQuality.GaussianWindow(side, sigma).view(side, side);

    /// <summary>Per image, the share of positions where <paramref name="predicted"/> ids [N, T] equal <paramref name="target"/> ids [N, T] → [N] (float32).</summary>
    public static Tensor TokenAccuracy(Tensor predicted, Tensor target)
    {
        if (!predicted.shape.SequenceEqual(target.shape) || predicted.dim() != 2)
            throw new ArgumentException($"token sets differ in shape: [{string.Join(", ", predicted.shape)}] vs [{string.Join(", ", target.shape)}]");
        using var scope = NewDisposeScope();
        return (predicted.to_type(ScalarType.Int64) == target.to_type(ScalarType.Int64)).to_type(ScalarType.Float32).mean([1L]).MoveToOuterDisposeScope();
    }

    /// <summary>All four scores of predicted images and tokens against the ground truth, as means over the pairs.</summary>
    public static TranslationScores Score(Tensor images, Tensor tokens, Tensor targetImages, Tensor targetTokens)
    {
        using var scope = NewDisposeScope();
        return new TranslationScores(
            Psnr(images, targetImages).mean().item<float>(), Ssim(images, targetImages).mean().item<float>(),
            L1(images, targetImages).mean().item<float>(), TokenAccuracy(tokens, targetTokens).mean().item<float>());
    }

    /// <summary>(x − y)/255 as float32 [N, C, H, W]; throws when the shapes differ.</summary>
    static (Tensor, Tensor) Scaled(Tensor x, Tensor y)
    {
        Difference(x, y).Dispose();                                                          // shape check, same message
        return (x.to_type(ScalarType.Float32).div(255), y.to_type(ScalarType.Float32).div(255));
    }

    static Tensor Difference(Tensor x, Tensor y)
    {
        if (!x.shape.SequenceEqual(y.shape) || x.dim() != 4)
            throw new ArgumentException($"image sets differ in shape: [{string.Join(", ", x.shape)}] vs [{string.Join(", ", y.shape)}]");
        return (x.to_type(ScalarType.Float32) - y.to_type(ScalarType.Float32)).div_(255);
    }
}
