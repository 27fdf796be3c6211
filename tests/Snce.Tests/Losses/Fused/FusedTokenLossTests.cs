using Snce.Losses;
using Snce.Losses.Fused;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

/// <summary>LossFactory's "fused" implementation against its "reference" one, through the ITokenLoss contract.</summary>
public class FusedTokenLossTests
{
    [Theory]
    [InlineData("snce", "latent", null)]
    [InlineData("snce", "code", null)]
    [InlineData("snce", "latent", 4)]
    [InlineData("snce", "code", 3)]
    [InlineData("ce", "latent", null)]
    public void FactoryFusedEqualsReference(string name, string anchor, int? topK)
    {
        using var c = FusedCase.Make("l2", n: 12, k: 23);
        using var scope = NewDisposeScope();
        var logits = c.Hidden.detach().matmul(c.Weight.detach().t());
        var targets = new TokenTargets(c.Tokens.masked_fill(c.Mask!.logical_not(), 0), c.Anchors, c.Mask, c.RowWeights);
        LossOutput Run(string implementation, out Tensor grad)
        {
            var snce = name == "snce";
            var loss = LossFactory.Create(new LossSpec
            {
                Kind = EnumNames<LossKind>.Parse(name), Tau = snce ? c.Tau : null, TopK = snce ? topK : null, Anchor = snce ? EnumNames<NeighborAnchor>.Parse(anchor) : null,
                Implementation = LossNames.ParseImplementation(implementation),
            }, c.Codebook, c.Metric);
            var x = logits.clone().requires_grad_();
            var o = loss.Forward(x, targets);
            o.Loss.backward();
            grad = x.grad!;
            (loss as IDisposable)?.Dispose();
            return o;
        }
        var reference = Run("reference", out var gRef);
        var fused = Run("fused", out var gFused);
        Assert.Equal(reference.Loss.Double(), fused.Loss.Double(), 1e-5);
        Assert.Equal(reference.HardCe.Double(), fused.HardCe.Double(), 1e-5);
        Assert.Equal(reference.TargetEntropy is null, fused.TargetEntropy is null);
        if (reference.TargetEntropy is { } h) Assert.Equal(h.Double(), fused.TargetEntropy!.Double(), 1e-5);
        FusedCase.AssertGrad("logits", gRef, gFused, 1e-6);
    }

    [Fact]
    public void FactoryBuildsFusedLossesAndRefusesTheOthers()
    {
        using var scope = NewDisposeScope();
        var codebook = randn(10, 3);
        Assert.IsType<FusedSnceLoss>(LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Tau = 1, Implementation = LossImplementation.Fused }, codebook, Metric.Dot));
        Assert.IsType<FusedCrossEntropyLoss>(LossFactory.Create(new LossSpec { Kind = LossKind.CrossEntropy, Implementation = LossImplementation.Fused }, codebook, Metric.Dot));
        var calibrated = (FusedSnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Perplexity = 3, Implementation = LossImplementation.Fused }, codebook, Metric.L2, randn(50, 3));
        Assert.NotNull(calibrated.Calibration);
        Assert.Equal(calibrated.Calibration!.Tau, calibrated.Tau);
        Assert.Throws<NotSupportedException>(() => LossFactory.Create(new LossSpec { Kind = LossKind.Stochastic, Implementation = LossImplementation.Fused }, codebook, Metric.L2));
    }
}
