using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Tests.Tokenizer;

public class EmaQuantizerTests
{
    static EmaQuantizer Quantizer(double decay, int k = 4, int restartMin = 1000) =>
        new(TokenizerPresets.Tiny with { CodebookSize = k, CodeDim = 2, Metric = "l2", Quantizer = QuantizerKind.Ema, EmaDecay = decay, RestartMinSteps = restartMin });

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.0)]
    public void UpdateMovesUsedCodesTowardTheMeanOfTheirVectors(double decay)
    {
        using var scope = NewDisposeScope();
        using var q = Quantizer(decay);
        double[,] c0 = { { 0, 0 }, { 10, 10 }, { -10, 10 }, { 100, 100 } };
        double[] n0 = [2, 2, 1, 3];
        using (no_grad())
        {
            q.Codebook.copy_(tensor(new float[] { 0, 0, 10, 10, -10, 10, 100, 100 }).view(4, 2));
            q.ClusterSize.copy_(tensor(n0.Select(x => (float)x).ToArray()));
            q.EmbedSum.copy_(q.Codebook * q.ClusterSize.unsqueeze(1));
        }
        q.train();
        // Two vectors near code 0, three near code 1; codes 2 and 3 unused.
        var z = tensor(new float[] { 1, 0, 0, 1, 9, 11, 11, 9, 12, 12 }).view(5, 2);
        var output = q.forward(z, new TrainingStep(5));
        Assert.Equal([0L, 0, 1, 1, 1], output.Indices.data<long>().ToArray());
        // Closed form: N = λN + (1−λ)n, S = λS + (1−λ)Σx, c = S / Ñ with Ñ = (N + ε)/(ΣN + Kε)·ΣN.
        double[] n = [2, 3, 0, 0];
        double[,] sum = { { 1, 1 }, { 32, 32 }, { 0, 0 }, { 0, 0 } };
        var newN = Enumerable.Range(0, 4).Select(k => decay * n0[k] + (1 - decay) * n[k]).ToArray();
        var total = newN.Sum();
        const double eps = 1e-5;
        var codes = q.Codebook.data<float>().ToArray();
        for (var k = 0; k < 4; k++)
            for (var e = 0; e < 2; e++)
            {
                var s = decay * c0[k, e] * n0[k] + (1 - decay) * sum[k, e];
                var expected = s / ((newN[k] + eps) / (total + 4 * eps) * total);
                Assert.Equal(expected, codes[k * 2 + e], 3);
            }
        // Used codes move toward their vectors' means ([0.5, 0.5] and [32/3, 32/3]); with λ = 0 they land on them.
        if (decay == 0)
        {
            Assert.Equal(0.5, codes[0], 3);
            Assert.Equal(32.0 / 3, codes[2], 3);
        }
        else
        {
            Assert.True(Math.Abs(codes[0] - 0.5) < 0.5);
            Assert.True(Math.Abs(codes[2] - 32.0 / 3) < Math.Abs(10 - 32.0 / 3));
        }
        // The straight-through output carries the selected codes' values (before the update).
        Assert.True(output.Quantized.detach().allclose(tensor(new float[] { 0, 0, 0, 0, 10, 10, 10, 10, 10, 10 }).view(5, 2)));
    }

    [Fact]
    public void DeadCodesRestartFromRecentEncoderOutputs()
    {
        using var scope = NewDisposeScope();
        using var q = Quantizer(0.9, k: 8, restartMin: 1);
        q.train();
        var gen = new Generator(1);
        using (no_grad())
        {
            q.Codebook.copy_(cat([full(1, 2, -100f), stack([arange(100f, 107f), full(7, 100f)], 1)]));
            q.ClusterSize.fill_(1);
            q.EmbedSum.copy_(q.Codebook);
        }
        var before = q.Codebook.clone();
        // Every latent sits near code 0, so codes 1..7 are unused; the window is max(1, ⌈8·8/64⌉) = 1 step.
        var z = full(64, 2, -100f) + randn(64, 2, generator: gen) * 0.01;
        var output = q.forward(z, new TrainingStep(10));
        Assert.True(output.Indices.eq(0).all().item<bool>());
        var distToBatch = cdist(q.Codebook, z).min(1).values;
        for (var k = 1; k < 8; k++)
        {
            Assert.True(distToBatch[k].item<float>() < 0.5f, $"code {k} was not restarted from the batch");
            Assert.True((q.Codebook[k] - before[k]).norm().item<float>() > 100, $"code {k} did not move");
        }
        Assert.Equal(10L, q.LastUsed[0].item<long>());                  // used, kept (and EMA-updated)
        Assert.Equal(0L, q.LastUsed[1].item<long>());                   // restarted, not used
        Assert.True((q.Codebook[0] - tensor(new float[] { -100, -100 })).norm().item<float>() < 0.1);
    }

    [Fact]
    public void FirstTrainingStepPlacesEveryCodeOnABatchLatent()
    {
        using var scope = NewDisposeScope();
        using var q = Quantizer(0.99, k: 32);
        q.train();
        var gen = new Generator(2);
        var z = randn(16, 2, generator: gen) + 50;                      // far from the random init
        q.forward(z, new TrainingStep(1));
        Assert.True(cdist(q.Codebook, z).min(1).values.max().item<float>() < 0.5f);
    }
}
