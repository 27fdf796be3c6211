using Snce.Losses;
using Snce.Losses.Fused;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

public class FusedSnceTests
{
    // Odd chunking everywhere: 13 rows in blocks of 5, 37 codes in chunks of 8.
    static readonly FusedOptions Odd = new() { RowChunk = 5, CodeChunk = 8 };

    [Theory]
    [InlineData("l2", null)]
    [InlineData("dot", null)]
    [InlineData("cosine", null)]
    [InlineData("l2", 5)]
    [InlineData("dot", 1)]
    [InlineData("cosine", 37)]
    public void LinearFormMatchesDenseReference(string metric, int? topK)
    {
        using var c = FusedCase.Make(metric);
        FusedCase.AssertClose(c.Reference(topK), c.FusedLinear(topK, Odd), 1e-5);
    }

    [Theory]
    [InlineData("l2", null)]
    [InlineData("dot", 3)]
    [InlineData("cosine", null)]
    public void LogitsFormMatchesDenseReference(string metric, int? topK)
    {
        using var c = FusedCase.Make(metric);
        using var scope = NewDisposeScope();
        var logits = (c.Hidden.detach().matmul(c.Weight.detach().t()) + c.Bias.detach()).requires_grad_();
        var o = FusedSnce.Forward(logits, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, topK, Odd);
        o.Loss.backward();

        var l64 = logits.detach().to(ScalarType.Float64).requires_grad_();
        var q = DenseReference.Targets(c.Anchors.to(ScalarType.Float64), c.Codebook.to(ScalarType.Float64), c.Metric, c.Tau, topK);
        var reference = DenseReference.Loss(l64, q, c.Mask, c.RowWeights);
        reference.backward();
        Assert.Equal(reference.Double(), o.Loss.Double(), 1e-5);
        Assert.Equal(DenseReference.MaskedMean(DenseReference.Entropy(q), c.Mask).Double(), o.TargetEntropy!.Double(), 1e-5);
        // KL(q‖p) = SNCE − H(q) ≥ 0 with unit weights; with weights it is just defined.
        FusedCase.AssertGrad("logits", l64.grad!, logits.grad!, 1e-5);
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("cosine")]
    public void SingleRowAndNoMask(string metric)
    {
        using var c = FusedCase.Make(metric, n: 1, k: 9, masked: false, weighted: false);
        FusedCase.AssertClose(c.Reference(null), c.FusedLinear(null, new FusedOptions { CodeChunk = 4 }), 1e-5);
    }

    [Fact]
    public void DefaultOptionsMatchTooAndWithoutBias()
    {
        using var c = FusedCase.Make("dot", n: 20, k: 50);
        FusedCase.AssertClose(c.Reference(null, bias: false), c.FusedLinear(null, null, bias: false), 1e-5);
    }

    [Theory]
    [InlineData("l2", null)]
    [InlineData("dot", 4)]
    [InlineData("cosine", null)]
    public void Float64PathIsExactTo1e10(string metric, int? topK)
    {
        using var c = FusedCase.Make(metric, dtype: ScalarType.Float64);
        FusedCase.AssertClose(c.Reference(topK), c.FusedLinear(topK, Odd), 1e-10);
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("dot")]
    public void StableAtTinyTauAndHugeDistances(string metric)
    {
        // Distances ~1e4 (codes of norm ~70) and τ = 1e-4: scores of size 1e8, q one-hot on the nearest code.
        using var c = FusedCase.Make(metric, tau: 1e-4, scale: 30.0);
        using var scope = NewDisposeScope();
        var d = c.Metric.Distance(c.Anchors, c.Codebook);
        Assert.True(d.abs().max().item<float>() > 1e3);
        var fused = c.FusedLinear(null, Odd);
        Assert.True(double.IsFinite(fused.Loss) && double.IsFinite(fused.Entropy!.Value));
        Assert.True(fused.GradHidden.isfinite().all().item<bool>() && fused.GradWeight.isfinite().all().item<bool>());
        // One-hot targets: SNCE equals CE on the nearest code, H(q) = 0.
        var ce = c.FusedLinear(null, Odd, soft: false);
        Assert.Equal(ce.Loss, fused.Loss, 1e-4);
        Assert.Equal(0.0, fused.Entropy!.Value, 1e-4);
        FusedCase.AssertClose(c.Reference(null), fused, 1e-4);
    }

    [Fact]
    public void BackwardScalesWithTheOutputGradient()
    {
        using var c = FusedCase.Make("l2");
        using var scope = NewDisposeScope();
        var o = FusedSnce.ForwardLinear(c.Hidden, c.Weight, c.Bias, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, Odd);
        (o.Loss * 3).backward();
        var reference = c.Reference(null);
        FusedCase.AssertGrad("hidden", reference.GradHidden * 3, c.Hidden.grad!, 3e-5);
        FusedCase.AssertGrad("weight", reference.GradWeight * 3, c.Weight.grad!, 3e-5);
    }

    [Fact]
    public void FrozenWeightGetsNoGradientAndEvalBuildsNoGraph()
    {
        using var c = FusedCase.Make("dot");
        using var scope = NewDisposeScope();
        var frozen = c.Weight.detach();
        var o = FusedSnce.ForwardLinear(c.Hidden, frozen, null, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, Odd);
        o.Loss.backward();
        Assert.NotNull(c.Hidden.grad);
        Assert.Null(frozen.grad);
        using (no_grad())
        {
            var e = FusedSnce.ForwardLinear(c.Hidden, frozen, null, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, Odd);
            Assert.False(e.Loss.requires_grad);
            Assert.Equal(o.Loss.Double(), e.Loss.Double(), 1e-5);
        }
    }

    [Fact]
    public void EmptyMaskGivesZero()
    {
        using var c = FusedCase.Make("l2", n: 4, masked: false);
        using var scope = NewDisposeScope();
        var none = zeros(4, dtype: ScalarType.Bool);
        var o = FusedSnce.ForwardLinear(c.Hidden, c.Weight, c.Bias, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, none, null, Odd);
        o.Loss.backward();
        Assert.Equal(0.0, o.Loss.item<float>());
        Assert.Equal(0.0, c.Weight.grad!.abs().max().item<float>());
    }

    [Fact]
    public void UnsupervisedRowsMayCarryIgnoreIndices()
    {
        using var c = FusedCase.Make("l2");
        using var scope = NewDisposeScope();
        var tokens = c.Tokens.clone().masked_fill(c.Mask!.logical_not(), -100);
        var a = FusedSnce.ForwardLinear(c.Hidden, c.Weight, c.Bias, c.Anchors, c.Codebook, c.Metric, c.Tau, tokens, c.Mask, c.RowWeights, Odd);
        var b = FusedSnce.ForwardLinear(c.Hidden, c.Weight, c.Bias, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, Odd);
        Assert.Equal(b.Loss.Double(), a.Loss.Double(), 1e-6);
    }

    [Fact]
    public void BFloat16ComputeIsCloseToFp32()
    {
        using var c = FusedCase.Make("l2", n: 16, k: 64, masked: false, weighted: false);
        var full = c.FusedLinear(null, null);
        var half = c.FusedLinear(null, new FusedOptions { ComputeDtype = ScalarType.BFloat16 });
        Assert.True(Math.Abs(full.Loss - half.Loss) < 2e-2 * Math.Abs(full.Loss), $"bf16 loss {half.Loss} vs fp32 {full.Loss}");
        var rel = (half.GradWeight - full.GradWeight).norm().item<float>() / full.GradWeight.norm().item<float>();
        Assert.True(rel < 3e-2, $"bf16 weight-gradient relative error {rel}");
        Assert.Equal(ScalarType.Float32, half.GradWeight.dtype); // delivered in the parameter's dtype
    }

    [Fact]
    public void RepeatedStepsLeakNoTensors()
    {
        using var c = FusedCase.Make("cosine");
        LeakCheck.AssertNoLeak(() =>
        {
            using var scope = NewDisposeScope();
            c.Hidden.grad?.zero_();
            c.Weight.grad?.zero_();
            c.Bias.grad?.zero_();
            var o = FusedSnce.ForwardLinear(c.Hidden, c.Weight, c.Bias, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, Odd, topK: 3);
            o.Loss.backward();
            var l = FusedSnce.Forward(c.Hidden.detach().matmul(c.Weight.detach().t()).requires_grad_(), c.Anchors, c.Codebook, c.Metric, c.Tau,
                c.Tokens, c.Mask, c.RowWeights, options: Odd);
            l.Loss.backward();
        }, repeats: 4, what: "fused SNCE forward+backward");
    }

    [Fact]
    public void InvalidArgumentsFailWithClearMessages()
    {
        using var c = FusedCase.Make("l2", n: 4, k: 7);
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => FusedSnce.ForwardLinear(c.Hidden, c.Weight, null, c.Anchors, c.Codebook, c.Metric, 0, c.Tokens, null, null));
        Assert.Contains("tau", e.Message);
        e = Assert.Throws<ArgumentException>(() => FusedSnce.ForwardLinear(c.Hidden, c.Weight, null, c.Anchors, c.Codebook, c.Metric, 1, c.Tokens, null, null, topK: 8));
        Assert.Contains("top-k", e.Message);
        e = Assert.Throws<ArgumentException>(() => FusedSnce.ForwardLinear(c.Hidden, c.Weight, null, c.Anchors, c.Codebook, c.Metric, 1, c.Tokens + 7, null, null));
        Assert.Contains("token ids", e.Message);
        e = Assert.Throws<ArgumentException>(() => FusedSnce.ForwardLinear(c.Hidden, c.Weight, null, c.Anchors.narrow(1, 0, 3), c.Codebook, c.Metric, 1, c.Tokens, null, null));
        Assert.Contains("anchors", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FusedOptions { RowChunk = 0 });
        Assert.Throws<ArgumentException>(() => new FusedOptions { ComputeDtype = ScalarType.Float16 });
        var cuda = Assert.Throws<InvalidOperationException>(() => FusedCrossEntropy.ForwardLinear(c.Hidden, c.Weight, null, c.Tokens, null, null,
            new FusedOptions { Backend = FusedBackend.Cuda }));
        Assert.Contains("not on a CUDA device", cuda.Message);
    }
}
