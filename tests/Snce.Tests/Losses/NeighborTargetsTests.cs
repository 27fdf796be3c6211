using Snce.Losses;
using static Snce.Tests.Losses.BruteForce;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class NeighborTargetsTests
{
    static (Tensor Z, Tensor C) Data(int n, int k, int d, long seed, ScalarType dtype = ScalarType.Float64)
    {
        var g = new Generator((ulong)seed);
        var z = randn([n, d], dtype: dtype, generator: g);
        var c = randn([k, d], dtype: dtype, generator: g) * (rand([k, 1], dtype: dtype, generator: g) + 0.5);
        return (z, c);
    }

    [Theory]
    [InlineData("l2", 0.7)]
    [InlineData("dot", 0.3)]
    [InlineData("cosine", 0.05)]
    public void TargetsMatchTheDefinitionAndSumToOne(string metric, double tau)
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(9, 23, 5, 1);
        var q = NeighborTargets.Probs(z, c, Metric.Parse(metric), tau);
        AssertClose(Targets(metric, Matrix(z), Matrix(c), tau), Matrix(q), 1e-12, "q");
        var sums = Vector(q.sum(1));
        Assert.All(sums, s => AssertClose(1, s, 1e-12, "Σ_k q"));
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("dot")]
    [InlineData("cosine")]
    public void ArgmaxOfTheTargetIsTheMetricsQuantization(string name)
    {
        using var scope = NewDisposeScope();
        var metric = Metric.Parse(name);
        var (z, c) = Data(64, 200, 6, 2, ScalarType.Float32);
        foreach (var tau in new[] { 1e-3, 0.1, 10.0 })
        {
            var argmax = NeighborTargets.LogProbs(z, c, metric, tau).argmax(1);
            Assert.True(argmax.equal(metric.Quantize(z, c, codeChunk: 37)).all().item<bool>(), $"{name}, τ = {tau}");
            var top1 = NeighborTargets.TopK(z, c, metric, tau, k: 5, codeChunk: 37).Ids.select(1, 0);
            Assert.True(top1.equal(metric.Quantize(z, c)).all().item<bool>(), $"{name} top-k, τ = {tau}");
        }
    }

    [Fact]
    public void SmallTauGivesOneHotOnTheNearestCode()
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(20, 50, 4, 3);
        var q = NeighborTargets.Probs(z, c, Metric.L2, 1e-6);
        var oneHot = nn.functional.one_hot(Metric.L2.Quantize(z, c), 50).to_type(ScalarType.Float64);
        AssertClose(Matrix(oneHot), Matrix(q), 1e-9, "q at τ → 0");
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void StableForTinyTauAndHugeDistances(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        // Latents and codes ~70 apart per coordinate: squared distances ~1e4..1e5; −d/τ ~ −1e9.
        var (z0, c0) = Data(16, 40, 4, 4, dtype);
        var (z, c) = (z0 * 50, c0 * 50);
        var tau = 1e-4;
        var logq = NeighborTargets.LogProbs(z, c, Metric.L2, tau);
        Assert.True(Metric.L2.Distance(z, c).min().to_type(ScalarType.Float64).item<double>() > 1, "distances should be large");
        Assert.False(logq.isnan().any().item<bool>(), "log q has NaN");
        var q = logq.exp();
        Assert.True(q.isfinite().all().item<bool>());
        Assert.True(NeighborTargets.Entropy(logq).isfinite().all().item<bool>());
        var oneHot = nn.functional.one_hot(Metric.L2.Quantize(z, c), 40).to_type(dtype);
        AssertClose(Matrix(oneHot), Matrix(q), 1e-6, "q at τ = 1e-4");
        var top = NeighborTargets.TopK(z, c, Metric.L2, tau, 3);
        Assert.False(top.LogProbs.isnan().any().item<bool>(), "top-k log q has NaN");
        AssertClose(Matrix(oneHot), Matrix(top.ToDense(40, dtype)), 1e-6, "top-k q at τ = 1e-4");
    }

    [Theory]
    [InlineData("l2", 4)]
    [InlineData("dot", 7)]
    [InlineData("cosine", 1)]
    public void TopKIsTheTruncatedRenormalizedTarget(string metric, int k)
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(11, 101, 3, 5);
        var top = NeighborTargets.TopK(z, c, Metric.Parse(metric), 0.4, k, rowChunk: 4, codeChunk: 9); // k may exceed a chunk's width
        Assert.Equal([11L, k], top.Ids.shape);
        AssertClose(Targets(metric, Matrix(z), Matrix(c), 0.4, k), Matrix(top.ToDense(101, ScalarType.Float64)), 1e-12, "top-k q");
        // Ids are nearest first.
        var d = Metric.Parse(metric).Distance(z, c).gather(1, top.Ids);
        Assert.True((d.diff(dim: 1) >= 0).all().item<bool>());
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("dot")]
    [InlineData("cosine")]
    public void CodeTableEqualsTheDenseComputation(string name)
    {
        using var scope = NewDisposeScope();
        var metric = Metric.Parse(name);
        var (_, c) = Data(1, 300, 8, 6);
        var tau = 0.25;
        var table = NeighborTargets.CodeTable(c, metric, 6, rowChunk: 64, codeChunk: 70).Targets(tau);
        var dense = NeighborTargets.LogProbs(c, c, metric, tau);                 // [K, K], fine at K = 300
        var (topLogits, topIds) = dense.topk(6, dim: 1);                           // q's order = distance order
        Assert.True(table.Ids.equal(topIds).all().item<bool>(), "neighbor ids");
        var renormalized = topLogits - topLogits.logsumexp(1, keepdim: true);
        AssertClose(Matrix(renormalized), Matrix(table.LogProbs), 1e-12, "table log q");
        var tokens = tensor(new long[] { 5, 0, 299, 5 });
        var rows = table.Lookup(tokens);
        Assert.True(rows.Ids.equal(topIds.index_select(0, tokens)).all().item<bool>());
        if (name != "dot") Assert.True(table.Ids.select(1, 0).equal(arange(300L)).all().item<bool>(), "a code is its own nearest neighbor");
    }

    [Fact]
    public void EntropyAndPerplexityMatchTheDefinition()
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(7, 13, 4, 7);
        var logq = NeighborTargets.LogProbs(z, c, Metric.Dot, 0.9);
        var h = Entropy(Matrix(logq.exp()));
        var got = Vector(NeighborTargets.Entropy(logq));
        for (var i = 0; i < h.Length; i++) AssertClose(h[i], got[i], 1e-12, $"H[{i}]");
        var ppl = Vector(NeighborTargets.Perplexity(logq));
        for (var i = 0; i < h.Length; i++) AssertClose(Math.Pow(2, h[i] / Math.Log(2)), ppl[i], 1e-10, $"2^H_bits[{i}]");
        // A uniform target over 4 codes has perplexity 4; a one-hot one has 1 (0·log 0 = 0).
        var uniform = full(1, 4, Math.Log(0.25), dtype: ScalarType.Float64);
        AssertClose(4, NeighborTargets.Perplexity(uniform).item<double>(), 1e-12, "uniform");
        var oneHot = tensor(new[] { 0.0, double.NegativeInfinity, double.NegativeInfinity }).unsqueeze(0);
        AssertClose(1, NeighborTargets.Perplexity(oneHot).item<double>(), 1e-12, "one-hot");
    }

    [Fact]
    public void BadTauAndKFailClearly()
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(2, 5, 3, 8);
        foreach (var tau in new[] { 0.0, -1.0, double.NaN, double.PositiveInfinity })
            Assert.Contains("τ (tau) must be", Assert.Throws<ArgumentException>(() => NeighborTargets.LogProbs(z, c, Metric.L2, tau)).Message);
        Assert.Contains("[1, K = 5], got k = 6", Assert.Throws<ArgumentException>(() => NeighborTargets.TopK(z, c, Metric.L2, 1, 6)).Message);
        Assert.Contains("got k = 0", Assert.Throws<ArgumentException>(() => NeighborTargets.CodeTable(c, Metric.L2, 0)).Message);
    }

    [Fact]
    public void NoTensorsLeak()
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(10, 50, 4, 9, ScalarType.Float32);
        Support.LeakCheck.AssertNoLeak(() =>
        {
            NeighborTargets.LogProbs(z, c, Metric.Cosine, 0.1).Dispose();
            NeighborTargets.TopK(z, c, Metric.L2, 0.1, 4, rowChunk: 3, codeChunk: 7).Dispose();
            using var logq = z.log_softmax(1);
            NeighborTargets.Entropy(logq).Dispose();
        }, what: "neighbor targets");
    }
}
