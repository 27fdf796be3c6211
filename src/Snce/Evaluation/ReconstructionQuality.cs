using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>Per-image reconstruction quality on images in [0, 1]: PSNR and SSIM.</summary>
public static class ReconstructionQuality
{
    /// <summary>MSE floor: identical images score 10·log10(1/1e−10) = 100 dB instead of infinity.</summary>
    public const double MseFloor = 1e-10;

    /// <summary>PSNR = 10·log10(1 / MSE) in dB, per image: x, y [B, C, H, W] in [0, 1] → [B] (float32).</summary>
    public static Tensor Psnr(Tensor x, Tensor y)
    {
        CheckPair(x, y);
        using var scope = NewDisposeScope();
        var mse = (x.to(ScalarType.Float32) - y.to(ScalarType.Float32)).square().flatten(1).mean([1L]);
        return mse.clamp_min(MseFloor).log10().mul(-10).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SSIM per image: x, y [B, C, H, W] in [0, 1] → [B], the mean of the SSIM map over positions and channels.
    /// </summary>
    /// <remarks>
    /// Wang, Bovik, Sheikh &amp; Simoncelli (2004), "Image quality assessment: from error visibility to structural
    /// similarity", IEEE Trans. Image Processing 13(4): local statistics under an 11×11 Gaussian window with σ = 1.5
    /// (weights sum to 1; σ² and σxy are the window-weighted, biased estimates), C1 = (0.01·L)², C2 = (0.03·L)², L = 1,
    ///   SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
    /// evaluated at 'valid' window positions only (no padding), as in the authors' reference implementation,
    /// per channel, then averaged over positions and channels. Images must be at least 11×11.
    /// </remarks>
    public static Tensor Ssim(Tensor x, Tensor y)
    {
        CheckPair(x, y);
        if (x.shape[2] < WindowSize || x.shape[3] < WindowSize)
            throw new ArgumentException($"SSIM needs images of at least {WindowSize}×{WindowSize} pixels, got {x.shape[2]}×{x.shape[3]}");
        return Ssim(x, y, WindowSize, WindowSigma);
    }

    /// <summary>
    /// SSIM per image as <see cref="Ssim(Tensor, Tensor)"/> under a side × side Gaussian window of σ
    /// <paramref name="sigma"/> (images at least side × side; smaller images take a smaller window, as translation scores do).
    /// </summary>
    public static Tensor Ssim(Tensor x, Tensor y, int side, double sigma)
    {
        CheckPair(x, y);
        using var scope = NewDisposeScope();
        var c = x.shape[1];
        var w = GaussianWindow(side, sigma, x.device).expand(c, 1, side, side);
        Tensor Filter(Tensor t) => nn.functional.conv2d(t, w, groups: c); // depthwise, valid
        var (xf, yf) = (x.to(ScalarType.Float32), y.to(ScalarType.Float32));
        var (mx, my) = (Filter(xf), Filter(yf));
        var (mx2, my2, mxy) = (mx * mx, my * my, mx * my);
        var sx = Filter(xf * xf) - mx2;
        var sy = Filter(yf * yf) - my2;
        var sxy = Filter(xf * yf) - mxy;
        const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
        var map = (2 * mxy + c1) * (2 * sxy + c2) / ((mx2 + my2 + c1) * (sx + sy + c2));
        return map.flatten(1).mean([1L]).MoveToOuterDisposeScope();
    }

    /// <summary>Window side of <see cref="Ssim(Tensor, Tensor)"/>.</summary>
    public const int WindowSize = 11;
    /// <summary>Gaussian σ of <see cref="Ssim(Tensor, Tensor)"/>'s window.</summary>
    public const double WindowSigma = 1.5;

    /// <summary>The normalized 11×11 Gaussian window (σ = 1.5) as [1, 1, 11, 11] float32.</summary>
    public static Tensor GaussianWindow(Device? device = null) => GaussianWindow(WindowSize, WindowSigma, device);

    /// <summary>The normalized side × side Gaussian window of σ <paramref name="sigma"/> as [1, 1, side, side] float32.</summary>
    public static Tensor GaussianWindow(int side, double sigma, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var r = arange(side, dtype: ScalarType.Float64) - (side - 1) / 2.0;
        var g = (-(r * r) / (2 * sigma * sigma)).exp();
        g = g / g.sum();
        return g.outer(g).to(ScalarType.Float32, device ?? CPU).view(1, 1, side, side).MoveToOuterDisposeScope();
    }

    static void CheckPair(Tensor x, Tensor y)
    {
        if (x.dim() != 4 || !x.shape.SequenceEqual(y.shape))
            throw new ArgumentException($"expected two image batches [B, C, H, W] of one shape, got [{string.Join(", ", x.shape)}] and [{string.Join(", ", y.shape)}]");
    }
}
