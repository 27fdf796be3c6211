using Snce.Evaluation;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

public class ReconstructionQualityTests
{
    [Fact]
    public void PsnrMatchesTheClosedForm()
    {
        using var scope = NewDisposeScope();
        var x = zeros(2, 3, 16, 16);
        var y = full(2, 3, 16, 16, 0.1f);                       // MSE = 0.01 → 20 dB
        Assert.Equal(20.0, ReconstructionQuality.Psnr(x, y)[0].item<float>(), 4);
        y[1].fill_(0.5f);                                       // MSE = 0.25 → 10·log10(4) dB
        Assert.Equal(10 * Math.Log10(4), ReconstructionQuality.Psnr(x, y)[1].item<float>(), 4);
        Assert.Equal(100.0, ReconstructionQuality.Psnr(x, x)[0].item<float>(), 3); // MSE floor 1e−10
    }

    [Fact]
    public void SsimOfAnImageWithItselfIsOne()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = rand(3, 3, 28, 28);
        var s = ReconstructionQuality.Ssim(x, x);
        Assert.True(s.sub(1).abs().max().item<float>() < 1e-5f);
        var noisy = (x + randn(3, 3, 28, 28) * 0.2).clamp(0, 1);
        Assert.True(ReconstructionQuality.Ssim(x, noisy).max().item<float>() < 0.9f);
    }

    [Fact]
    public void SsimOfConstantImagesMatchesTheHandComputation()
    {
        // Constant images a and b: every window has σx = σy = σxy = 0, so
        // SSIM = (2ab + C1)/(a² + b² + C1) · (C2/C2) with C1 = 0.01², C2 = 0.03².
        using var scope = NewDisposeScope();
        const double a = 0.2, b = 0.5, c1 = 1e-4;
        var s = ReconstructionQuality.Ssim(full(1, 1, 20, 20, a), full(1, 1, 20, 20, b)).item<float>();
        Assert.Equal((2 * a * b + c1) / (a * a + b * b + c1), s, 4); // 0.200100 / 0.290100 = 0.68976
        Assert.Equal(0.68976, s, 4);
    }

    [Fact]
    public void SsimOfAShiftedCheckerboardMatchesTheHandComputation()
    {
        // x alternates 0.25/0.75 in a checkerboard, y = x + 0.1. Under any 11×11 Gaussian window (odd size, symmetric)
        // the weights on the two colors differ, so compute μ and σ² from the window itself: σy = σx, σxy = σx²,
        // SSIM = (2μ(μ+s) + C1)(2σ² + C2) / ((μ² + (μ+s)² + C1)(2σ² + C2)) = (2μ(μ+s) + C1)/(μ² + (μ+s)² + C1).
        using var scope = NewDisposeScope();
        var ij = arange(11).unsqueeze(1) + arange(11).unsqueeze(0);
        var x = (ij % 2).to(ScalarType.Float32) * 0.5 + 0.25;                // 11×11: one valid window
        var w = ReconstructionQuality.GaussianWindow().view(11, 11).to(ScalarType.Float64);
        var mu = (w * x.to(ScalarType.Float64)).sum().item<double>();
        const double shift = 0.1, c1 = 1e-4;
        var expected = (2 * mu * (mu + shift) + c1) / (mu * mu + (mu + shift) * (mu + shift) + c1);
        var s = ReconstructionQuality.Ssim(x.view(1, 1, 11, 11), (x + shift).view(1, 1, 11, 11)).item<float>();
        Assert.Equal(expected, s, 4);
    }

    [Fact]
    public void GaussianWindowIsTheNormalized11x11Sigma15Kernel()
    {
        using var scope = NewDisposeScope();
        var w = ReconstructionQuality.GaussianWindow().view(11, 11);
        Assert.Equal(1.0, w.sum().item<float>(), 5);
        var norm = Enumerable.Range(-5, 11).Sum(r => Math.Exp(-r * r / 4.5));
        Assert.Equal(1 / (norm * norm), w[5, 5].item<float>(), 6);
        Assert.Equal(Math.Exp(-25 / 4.5) / (norm * norm), w[0, 5].item<float>(), 7);
    }
}
