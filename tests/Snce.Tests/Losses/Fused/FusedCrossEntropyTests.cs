using Snce.Losses.Fused;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

public class FusedCrossEntropyTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void LinearFormEqualsLogSoftmaxCrossEntropy(bool masked, bool weighted)
    {
        using var c = FusedCase.Make("l2", n: 11, k: 29, masked: masked, weighted: weighted);
        var fused = c.FusedLinear(null, new FusedOptions { RowChunk = 4, CodeChunk = 6 }, soft: false);
        FusedCase.AssertClose(c.Reference(null, soft: false), fused, 1e-5);
        Assert.Null(fused.Entropy);
        if (!weighted) Assert.Equal(fused.HardCe, fused.Loss, 1e-5); // unweighted, CE's loss is its hard-CE metric
    }

    [Fact]
    public void LogitsFormEqualsLogSoftmaxCrossEntropy()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var logits = (randn([9, 31], generator: g) * 3).requires_grad_();
        var tokens = randint(31, [9], generator: g);
        var mask = tensor(new[] { true, true, false, true, true, true, false, true, true });
        var o = FusedCrossEntropy.Forward(logits, tokens, mask, null, new FusedOptions { CodeChunk = 7 });
        o.Loss.backward();
        var l64 = logits.detach().to(ScalarType.Float64).requires_grad_();
        var reference = DenseReference.Loss(l64, DenseReference.OneHot(tokens, 31, ScalarType.Float64), mask, null);
        reference.backward();
        Assert.Equal(reference.Double(), o.Loss.Double(), 1e-5);
        FusedCase.AssertGrad("logits", l64.grad!, logits.grad!, 1e-6);
        Assert.Equal(0.0, logits.grad![2].abs().max().item<float>()); // unsupervised row
    }
}
