using Snce.Tests.Support;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Tests.Tokenizer;

public class IndexBackpropTests
{
    static TokenizerConfig Config(string metric, int k = 48, int d = 8, int rowChunk = 0, double entropy = 0) =>
        TokenizerPresets.Tiny with
        {
            CodebookSize = k, CodeDim = d, Metric = metric, IbqRowChunk = rowChunk, IbqTemperature = 0.7, EntropyWeight = entropy,
        };

    /// <summary>Gradients of Σ q ⊙ R + quantizer loss w.r.t. z and the codebook, with the quantizer's codebook set to <paramref name="codebook"/>.</summary>
    static (Tensor Q, Tensor Loss, Tensor Gz, Tensor Gc) Grads(TokenizerConfig config, Tensor z0, Tensor codebook, Tensor r)
    {
        using var q = new IndexBackpropQuantizer(config);
        using (no_grad()) q.Codebook.copy_(codebook);
        var z = z0.clone().requires_grad_(true);
        var output = q.forward(z, null);
        ((output.Quantized * r).sum() + output.Loss * 10).backward();
        var result = (output.Quantized.detach().clone(), output.Loss.detach().clone(), z.grad!.clone(), q.Codebook.grad!.clone());
        IndexBackpropFunction.ReleaseGradients();
        return result;
    }

    [Theory]
    [InlineData("l2", 0, 0.0)]
    [InlineData("l2", 7, 0.0)]
    [InlineData("l2", 7, 0.5)]
    [InlineData("dot", 0, 0.0)]
    [InlineData("dot", 5, 0.0)]
    [InlineData("dot", 5, 0.5)]
    [InlineData("cosine", 0, 0.0)]
    [InlineData("cosine", 11, 0.0)]
    [InlineData("cosine", 11, 0.5)]
    public void BlockedPassesEqualDenseAutograd(string metric, int rows, double entropy)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var z = randn(40, 8);
        var c = randn(48, 8) * 0.7;
        var r = randn(40, 8);
        var (qd, ld, gzd, gcd) = Grads(Config(metric, rowChunk: -1, entropy: entropy), z, c, r);
        var (qb, lb, gzb, gcb) = Grads(Config(metric, rowChunk: rows, entropy: entropy), z, c, r);
        Assert.True(qd.allclose(qb, rtol: 1e-5, atol: 1e-6), "forward values differ");
        Assert.True(ld.allclose(lb, rtol: 1e-5, atol: 1e-6), $"losses differ: {ld.item<float>()} vs {lb.item<float>()}");
        Assert.True(gzd.allclose(gzb, rtol: 1e-4, atol: 1e-5), $"dL/dz differs by {(gzd - gzb).abs().max().item<float>()}");
        Assert.True(gcd.allclose(gcb, rtol: 1e-4, atol: 1e-5), $"dL/dC differs by {(gcd - gcb).abs().max().item<float>()}");
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("dot")]
    [InlineData("cosine")]
    public void EveryCodeReceivesGradient(string metric)
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        const int k = 256;
        var (_, _, _, gc) = Grads(Config(metric, k: k), randn(32, 8), randn(k, 8), randn(32, 8));
        var rowsWithGradient = gc.abs().sum(1).gt(0).sum().item<long>();
        Assert.Equal(k, rowsWithGradient);
    }

    [Fact]
    public void ForwardValueIsTheSelectedCode()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var q = new IndexBackpropQuantizer(Config("dot"));
        var z = randn(20, 8).requires_grad_(true);
        var o = q.forward(z, null);
        Assert.True(o.Quantized.detach().eq(q.Codes().detach().index_select(0, o.Indices)).all().item<bool>()); // unit codes under dot
        IndexBackpropFunction.ReleaseGradients();
    }
}
