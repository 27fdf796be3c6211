using Snce.Evaluation;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

public class PrecisionRecallTests
{
    static Tensor Cluster(long n, double center, long seed) => randn([n, 8], generator: new Generator((ulong)seed)) + center;

    [Fact]
    public void IdenticalSetsHaveFullPrecisionAndRecall()
    {
        using var x = Cluster(300, 0, 1);
        var r = PrecisionRecall.Compute(x, x.clone());
        Assert.Equal(1.0, r.Precision);
        Assert.Equal(1.0, r.Recall);
        Assert.Equal(3, r.K);
    }

    [Fact]
    public void DisjointFarClustersHaveNone()
    {
        using var real = Cluster(200, 0, 1);
        using var fake = Cluster(200, 100, 2);
        var r = PrecisionRecall.Compute(real, fake);
        Assert.Equal(0.0, r.Precision);
        Assert.Equal(0.0, r.Recall);
    }

    [Fact]
    public void ASubsetIsPreciseButMissesTheRest()
    {
        // Real: two far clusters; generated: points of the first one only (mode dropping).
        using var a = Cluster(200, 0, 1);
        using var b = Cluster(200, 100, 2);
        using var real = cat([a, b], 0);
        using var fake = a.narrow(0, 0, 150).clone();
        var r = PrecisionRecall.Compute(real, fake);
        Assert.Equal(1.0, r.Precision);
        Assert.InRange(r.Recall, 0.3, 0.5); // at most cluster a's half of the real points
    }

    [Fact]
    public void ChunkingDoesNotChangeTheResult()
    {
        using var real = Cluster(257, 0, 3);
        using var fake = Cluster(211, 0.7, 4);
        var whole = PrecisionRecall.Compute(real, fake, k: 5, chunk: 10_000);
        var chunked = PrecisionRecall.Compute(real, fake, k: 5, chunk: 17);
        Assert.Equal(whole, chunked);
        Assert.InRange(whole.Precision, 0.05, 0.95);
    }

    [Fact]
    public void KnnRadiiMatchBruteForce()
    {
        using var x = Cluster(40, 0, 5);
        using var radii = PrecisionRecall.KnnRadii(x, 3, chunk: 7);
        var pts = Enumerable.Range(0, 40).Select(i => x[i].to(ScalarType.Float64).data<double>().ToArray()).ToArray();
        for (var i = 0; i < 40; i++)
        {
            var d = pts.Where((_, j) => j != i).Select(p => Math.Sqrt(p.Zip(pts[i], (u, v) => (u - v) * (u - v)).Sum())).OrderBy(v => v).ToArray();
            Assert.Equal(d[2], radii[i].item<float>(), 4);
        }
    }

    [Fact]
    public void TooFewPointsFailClearly()
    {
        using var x = Cluster(3, 0, 1);
        using var y = Cluster(10, 0, 2);
        var e = Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(y, x, k: 3));
        Assert.Contains("generated set has 3 points", e.Message);
        using var wrong = zeros(10, 4);
        Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(y, wrong));
    }
}
