using Snce.Losses;
using static Snce.Tests.Losses.BruteForce;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class TauCalibrationTests
{
    static (Tensor Z, Tensor C) Data(int n, int k, int d, long seed)
    {
        var g = new Generator((ulong)seed);
        return (randn([n, d], generator: g), randn([k, d], generator: g) * (rand([k, 1], generator: g) + 0.5));
    }

    /// <summary>Mean over anchors of 2^H(q) with H in bits, from the brute-force targets.</summary>
    static double[] BrutePerplexities(string metric, Tensor z, Tensor c, double tau, int? topK) =>
        Entropy(Targets(metric, Matrix(z), Matrix(c), tau, topK)).Select(h => Math.Pow(2, h / Math.Log(2))).ToArray();

    [Theory]
    [InlineData("l2", 4.0, null)]
    [InlineData("l2", 40.0, null)]
    [InlineData("dot", 2.5, null)]
    [InlineData("cosine", 16.0, null)]
    [InlineData("l2", 3.0, 8)]
    [InlineData("cosine", 1.5, 4)]
    [InlineData("dot", 15.0, 16)]
    public void ReachesTheTargetPerplexity(string metric, double target, int? topK)
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(200, 120, 6, 11);
        var r = TauCalibration.Calibrate(z, c, Metric.Parse(metric), target, topK, rowChunk: 64);
        // Independent check: brute-force perplexities at the returned τ.
        var ppl = BrutePerplexities(metric, z, c, r.Tau, topK);
        var mean = ppl.Average();
        Assert.True(Math.Abs(mean / target - 1) < 0.02, $"mean perplexity {mean} at τ = {r.Tau}, target {target}");
        Assert.True(Math.Abs(r.MeanPerplexity / target - 1) < 2 * TauCalibration.Tolerance, $"reported {r.MeanPerplexity}");
        AssertClose(mean, r.MeanPerplexity, 1e-3 * mean, "reported mean");
        AssertClose(ppl.Min(), r.MinPerplexity, 1e-3 * mean, "min");
        AssertClose(ppl.Max(), r.MaxPerplexity, 1e-3 * mean, "max");
        var std = Math.Sqrt(ppl.Select(p => (p - mean) * (p - mean)).Average());
        AssertClose(std, r.StdPerplexity, 1e-3 * mean, "std");
        Assert.Equal(200, r.Anchors);
        Assert.Equal(topK, r.TopK);
        Assert.InRange(r.Iterations, 0, 200);
    }

    [Fact]
    public void MeasureReportsTheSameStatistics()
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(50, 30, 4, 12);
        var r = TauCalibration.Calibrate(z, c, Metric.L2, 5);
        var m = TauCalibration.Measure(z, c, Metric.L2, r.Tau);
        AssertClose(r.MeanPerplexity, m.MeanPerplexity, 1e-9, "mean");
        AssertClose(r.StdPerplexity, m.StdPerplexity, 1e-9, "std");
    }

    [Fact]
    public void LargeSamplesAreProcessedInChunksWithTheSameResult()
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(300, 40, 4, 13);
        var whole = TauCalibration.Calibrate(z, c, Metric.Cosine, 6, rowChunk: 300);
        var chunked = TauCalibration.Calibrate(z, c, Metric.Cosine, 6, rowChunk: 7);
        AssertClose(whole.Tau, chunked.Tau, 1e-9 * whole.Tau, "τ");
    }

    [Theory]
    [InlineData(1.0, null, "(1, 30)")]
    [InlineData(30.0, null, "(1, 30)")]
    [InlineData(0.5, null, "(1, 30)")]
    [InlineData(double.NaN, null, "(1, 30)")]
    [InlineData(5.0, 5, "(1, 5)")]
    [InlineData(8.0, 5, "top-k = 5")]
    public void OutOfRangeTargetsFailClearly(double target, int? topK, string expected)
    {
        using var scope = NewDisposeScope();
        var (z, c) = Data(10, 30, 4, 14);
        var e = Assert.Throws<ArgumentException>(() => TauCalibration.Calibrate(z, c, Metric.L2, target, topK));
        Assert.Contains(expected, e.Message);
        Assert.Contains("perplexity", e.Message);
    }

    [Fact]
    public void DegenerateCodebooksFailClearly()
    {
        using var scope = NewDisposeScope();
        var z = randn(5, 3);
        // All codes identical: every τ gives perplexity K.
        var same = ones(10, 3);
        Assert.Contains("degenerate", Assert.Throws<ArgumentException>(() => TauCalibration.Calibrate(z, same, Metric.L2, 3)).Message);
        // Pairs of duplicate codes: perplexity never drops below 2.
        var pairs = randn(5, 3).repeat_interleave(2, 0);
        Assert.Contains("cannot reach perplexity 1.5", Assert.Throws<ArgumentException>(() => TauCalibration.Calibrate(z, pairs, Metric.L2, 1.5)).Message);
    }

    [Fact]
    public void CalibratingOnStoredNearestDistancesIsTopKCalibration()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(12);
        var (z, c) = (randn([300, 6], generator: g), randn([64, 6], generator: g));
        var viaAnchors = TauCalibration.Calibrate(z, c, Metric.L2, 3, topK: 5);
        // The 5 smallest distances per anchor, by sorting all of them: what a --latents topk shard stores.
        var (nearest, _) = Metric.L2.Distance(z, c).topk(5, dim: 1, largest: false, sorted: true);
        var viaDistances = TauCalibration.CalibrateOnDistances(nearest, 3);
        Assert.Equal(viaAnchors.Tau, viaDistances.Tau, 1e-6 * viaAnchors.Tau);
        Assert.Equal((viaAnchors.MeanPerplexity, viaAnchors.Anchors, viaAnchors.TopK), (viaDistances.MeanPerplexity, viaDistances.Anchors, viaDistances.TopK));
        Assert.Contains("(1, 5)", Assert.Throws<ArgumentException>(() => TauCalibration.CalibrateOnDistances(nearest, 5)).Message);
        Assert.Contains("[M, k]", Assert.Throws<ArgumentException>(() => TauCalibration.CalibrateOnDistances(nearest.flatten(), 3)).Message);
    }
}
