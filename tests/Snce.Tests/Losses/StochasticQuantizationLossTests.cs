using Snce.Losses;
using static Snce.Tests.Losses.BruteForce;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class StochasticQuantizationLossTests
{
    /// <summary>5 distinct positions repeated 4,000 times each: one Forward averages 4,000 draws per position.</summary>
    static (Tensor Logits, Tensor Codebook, Tensor Latents, Tensor Tokens) Repeated(int repeats, long seed)
    {
        var g = new Generator((ulong)seed);
        var c = randn([13, 4], dtype: ScalarType.Float64, generator: g);
        var z = randn([5, 4], dtype: ScalarType.Float64, generator: g).repeat(repeats, 1);
        var logits = (randn([5, 13], dtype: ScalarType.Float64, generator: g) * 2).repeat(repeats, 1);
        return (logits, c, z, Metric.L2.Quantize(z, c));
    }

    [Theory]
    [InlineData(0.3, 4, NeighborAnchor.Latent)]
    [InlineData(0.8, 2, NeighborAnchor.Code)]
    public void ReplacementRateIsAlphaAndDrawsComeFromTheTopDelta(double alpha, int delta, NeighborAnchor anchor)
    {
        using var scope = NewDisposeScope();
        var (_, c, z, tokens) = Repeated(4000, 41);
        using var loss = new StochasticQuantizationLoss(c, Metric.L2, alpha, delta, anchor);
        var targets = new TokenTargets(tokens, z);
        StochasticDraw draw;
        using (DeviceRandom.SeededDefault(7, CPU)) draw = loss.Draw(targets);
        const int n = 20000;
        var sigma = Math.Sqrt(alpha * (1 - alpha) / n);
        var rate = draw.Replaced.to_type(ScalarType.Float64).mean().item<double>();
        Assert.True(Math.Abs(rate - alpha) < 4 * sigma, $"replacement rate {rate}, α = {alpha}");
        // δ includes the nearest: the token changes with probability α(δ − 1)/δ.
        var changedExpected = alpha * (delta - 1) / delta;
        var changed = (draw.Tokens != tokens).to_type(ScalarType.Float64).mean().item<double>();
        Assert.True(Math.Abs(changed - changedExpected) < 4 * Math.Sqrt(changedExpected * (1 - changedExpected) / n), $"changed {changed}, expected {changedExpected}");
        Assert.True((draw.Tokens == tokens).logical_or(draw.Replaced).all().item<bool>(), "only replaced rows change");
        // Every drawn token is one of the δ nearest codes of the anchor.
        var anchors = anchor == NeighborAnchor.Latent ? z : c.index_select(0, tokens);
        var nearest = Metric.L2.Distance(anchors, c).topk(delta, dim: 1, largest: false).indexes;
        Assert.True((nearest == draw.Tokens.unsqueeze(1)).any(1).all().item<bool>(), "draws outside the top-δ");
    }

    [Fact]
    public void MeanOverDrawsIsCrossEntropyAgainstTheUniformTopDeltaMixture()
    {
        using var scope = NewDisposeScope();
        var (logits, c, z, tokens) = Repeated(4000, 42);
        var (alpha, delta) = (0.5, 4);
        using var loss = new StochasticQuantizationLoss(c, Metric.L2, alpha, delta, NeighborAnchor.Latent);
        var targets = new TokenTargets(tokens, z);
        double sampled;
        using (DeviceRandom.SeededDefault(8, CPU)) sampled = loss.Forward(logits, targets).Loss.item<double>();
        // Mixture target (1 − α)·onehot(nearest) + α·uniform(top-δ), built by brute force.
        var zs = Matrix(z.narrow(0, 0, 5));
        var cs = Matrix(c);
        var mixture = new double[5, 13];
        for (var i = 0; i < 5; i++)
        {
            var order = Enumerable.Range(0, 13).OrderBy(k => Distance("l2", zs, i, cs, k)).ToArray();
            mixture[i, order[0]] += 1 - alpha;
            foreach (var k in order.Take(delta)) mixture[i, k] += alpha / delta;
        }
        var x5 = Matrix(logits.narrow(0, 0, 5));
        var expected = SoftCrossEntropy(x5, mixture).Average();
        // Standard error of the Monte-Carlo mean, from the per-row CE spread.
        var p = Softmax(x5);
        var variance = Enumerable.Range(0, 5).Average(i =>
        {
            var m = -Enumerable.Range(0, 13).Sum(k => mixture[i, k] * Math.Log(p[i, k]));
            return Enumerable.Range(0, 13).Sum(k => mixture[i, k] * Math.Pow(-Math.Log(p[i, k]) - m, 2));
        });
        var se = Math.Sqrt(variance / 20000);
        Assert.True(Math.Abs(sampled - expected) < 4 * se, $"mean stochastic CE {sampled}, mixture CE {expected}, s.e. {se}");
        AssertClose(mixture, Matrix(loss.DenseTargets(new TokenTargets(tokens.narrow(0, 0, 5), z.narrow(0, 0, 5)), ScalarType.Float64)), 1e-15, "expected target");
    }

    /// <summary>
    /// The draws come from the default generator of the targets' device (the CPU here), which the trainer seeds per step:
    /// the same seed gives the same loss, another seed another, and the replaced rows are exactly the first N uniforms of
    /// that seeded stream below α (an independent draw of the same stream).
    /// </summary>
    [Fact]
    public void TheDevicesSeededDefaultGeneratorIsTheOnlySourceOfRandomness()
    {
        using var scope = NewDisposeScope();
        var (logits, c, z, tokens) = Repeated(50, 43);
        var targets = new TokenTargets(tokens, z);
        using var loss = new StochasticQuantizationLoss(c, Metric.L2, 0.5, 3, NeighborAnchor.Latent);
        double Run(long seed)
        {
            using (DeviceRandom.SeededDefault(seed, CPU)) return loss.Forward(logits, targets).Loss.item<double>();
        }
        Assert.Equal(Run(1), Run(1));
        Assert.NotEqual(Run(1), Run(2));
        Tensor replaced, expected;
        using (DeviceRandom.SeededDefault(5, CPU)) replaced = loss.Draw(targets).Replaced;
        using (DeviceRandom.SeededDefault(5, CPU)) expected = rand([tokens.shape[0]], dtype: ScalarType.Float64) < 0.5;
        Assert.True(replaced.Equals(expected), "the replacement coins are not the seeded default stream's");
        using var never = new StochasticQuantizationLoss(c, Metric.L2, 0, 3, NeighborAnchor.Latent);
        var ce = new CrossEntropyLoss(13).Forward(logits, targets);
        var none = never.Forward(logits, targets);
        AssertClose(ce.Loss.item<double>(), none.Loss.item<double>(), 1e-12, "α = 0 is CE");
        AssertClose(ce.Loss.item<double>(), none.HardCe.item<double>(), 1e-12, "hard CE");
        Assert.Null(none.TargetEntropy);
    }
}
