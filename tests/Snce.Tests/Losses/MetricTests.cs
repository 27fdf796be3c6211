using Snce.Losses;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class MetricTests
{
    /// <summary>Brute force with plain loops in double precision: the independent reference.</summary>
    static double BruteDistance(string metric, float[] z, float[] c)
    {
        double dot = 0, zz = 0, cc = 0;
        for (var i = 0; i < z.Length; i++) { dot += z[i] * c[i]; zz += z[i] * z[i]; cc += c[i] * c[i]; }
        return metric switch
        {
            "l2" => zz - 2 * dot + cc,
            "dot" => -dot,
            "cosine" => -dot / Math.Sqrt(zz) / Math.Sqrt(cc),
            _ => throw new ArgumentException(metric),
        };
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("dot")]
    [InlineData("cosine")]
    public void DistanceMatchesBruteForce(string name)
    {
        var g = new Generator(7);
        using var z = randn([5, 3], generator: g);
        using var c = randn([11, 3], generator: g);
        using var d = Metric.Parse(name).Distance(z, c);
        var zs = z.data<float>().ToArray();
        var cs = c.data<float>().ToArray();
        for (var i = 0; i < 5; i++)
            for (var k = 0; k < 11; k++)
                Assert.Equal(BruteDistance(name, zs[(i * 3)..(i * 3 + 3)], cs[(k * 3)..(k * 3 + 3)]), d[i, k].item<float>(), 4);
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("dot")]
    [InlineData("cosine")]
    public void ChunkedQuantizationEqualsBruteForceArgmin(string name)
    {
        var metric = Metric.Parse(name);
        var g = new Generator(11);
        using var scope = NewDisposeScope();
        var z = randn([37, 8], generator: g);
        var c = randn([1000, 8], generator: g) * (rand([1000, 1], generator: g) + 0.5);
        var zs = z.data<float>().ToArray();
        var cs = c.data<float>().ToArray();
        var expected = Enumerable.Range(0, 37).Select(i =>
            Enumerable.Range(0, 1000).MinBy(k => BruteDistance(name, zs[(i * 8)..(i * 8 + 8)], cs[(k * 8)..(k * 8 + 8)]))).ToArray();
        // Odd chunk sizes: K and N are not multiples of them.
        var got = metric.Quantize(z, c, rowChunk: 10, codeChunk: 333).data<long>().ToArray();
        Assert.Equal(expected.Select(e => (long)e), got);
    }

    [Fact]
    public void QuantizingCodesReturnsTheirOwnIndices()
    {
        using var scope = NewDisposeScope();
        var c = randn([500, 16], generator: new Generator(3));
        var idx = randint(0, 500, [64], generator: new Generator(4));
        foreach (var m in new[] { Metric.L2, Metric.Cosine })
            Assert.True(m.Quantize(c[idx], c, codeChunk: 128).equal(idx).all().item<bool>(), m.Name); // indices → codes → indices
    }

    [Fact]
    public void UnknownMetricAndShapeMismatchFailClearly()
    {
        var e = Assert.Throws<ArgumentException>(() => Metric.Parse("manhattan"));
        Assert.Contains(Metric.Allowed, e.Message);
        using var z = zeros(2, 3);
        using var c = zeros(4, 5);
        e = Assert.Throws<ArgumentException>(() => Metric.L2.Distance(z, c));
        Assert.Contains("D = 3", e.Message);
    }

    [Fact]
    public void QuantizeLeaksNoTensors()
    {
        using var z = randn(20, 4);
        using var c = randn(100, 4);
        Snce.Tests.Support.LeakCheck.AssertNoLeak(() => Metric.Dot.Quantize(z, c, rowChunk: 7, codeChunk: 30).Dispose());
    }
}
