using static TorchSharp.torch;

namespace Snce.Tests.Losses;

/// <summary>
/// Independent references in plain C# loops (double precision), written from the formulas in docs/losses.md
/// without any tensor op: distances by their definitions, softmax with the max subtracted, sorting for top-k.
/// </summary>
static class BruteForce
{
    public static double[,] Matrix(Tensor t)
    {
        using var c = t.detach().cpu().to_type(ScalarType.Float64).contiguous();
        var (n, k) = ((int)c.shape[0], (int)c.shape[1]);
        var flat = c.data<double>().ToArray();
        var m = new double[n, k];
        for (var i = 0; i < n; i++) for (var j = 0; j < k; j++) m[i, j] = flat[i * k + j];
        return m;
    }

    public static double[] Vector(Tensor t)
    {
        using var c = t.detach().cpu().to_type(ScalarType.Float64).contiguous();
        return c.data<double>().ToArray();
    }

    public static double Distance(string metric, double[,] z, int i, double[,] c, int k)
    {
        double dot = 0, zz = 0, cc = 0, sq = 0;
        for (var j = 0; j < z.GetLength(1); j++)
        {
            dot += z[i, j] * c[k, j]; zz += z[i, j] * z[i, j]; cc += c[k, j] * c[k, j];
            sq += (z[i, j] - c[k, j]) * (z[i, j] - c[k, j]);
        }
        return metric switch
        {
            "l2" => sq,
            "dot" => -dot,
            "cosine" => -dot / Math.Sqrt(zz) / Math.Sqrt(cc),
            _ => throw new ArgumentException(metric),
        };
    }

    /// <summary>q(k|z_i) = softmax_k(−d/τ), optionally truncated to the k smallest distances and renormalized.</summary>
    public static double[,] Targets(string metric, double[,] z, double[,] c, double tau, int? topK = null)
    {
        var (n, numCodes) = (z.GetLength(0), c.GetLength(0));
        var q = new double[n, numCodes];
        for (var i = 0; i < n; i++)
        {
            var d = Enumerable.Range(0, numCodes).Select(k => Distance(metric, z, i, c, k)).ToArray();
            var kept = Enumerable.Range(0, numCodes).OrderBy(k => d[k]).Take(topK ?? numCodes).ToArray();
            var min = kept.Min(k => d[k]);
            var sum = kept.Sum(k => Math.Exp(-(d[k] - min) / tau));
            foreach (var k in kept) q[i, k] = Math.Exp(-(d[k] - min) / tau) / sum;
        }
        return q;
    }

    public static double[,] Softmax(double[,] x)
    {
        var (n, k) = (x.GetLength(0), x.GetLength(1));
        var p = new double[n, k];
        for (var i = 0; i < n; i++)
        {
            var max = double.NegativeInfinity;
            for (var j = 0; j < k; j++) max = Math.Max(max, x[i, j]);
            double sum = 0;
            for (var j = 0; j < k; j++) sum += Math.Exp(x[i, j] - max);
            for (var j = 0; j < k; j++) p[i, j] = Math.Exp(x[i, j] - max) / sum;
        }
        return p;
    }

    /// <summary>Per-row −Σ_k t_k log softmax(x)_k.</summary>
    public static double[] SoftCrossEntropy(double[,] x, double[,] t)
    {
        var p = Softmax(x);
        return Enumerable.Range(0, x.GetLength(0)).Select(i =>
            -Enumerable.Range(0, x.GetLength(1)).Where(j => t[i, j] > 0).Sum(j => t[i, j] * Math.Log(p[i, j]))).ToArray();
    }

    public static double[] Entropy(double[,] t) =>
        Enumerable.Range(0, t.GetLength(0)).Select(i =>
            -Enumerable.Range(0, t.GetLength(1)).Where(j => t[i, j] > 0).Sum(j => t[i, j] * Math.Log(t[i, j]))).ToArray();

    public static void AssertClose(double[,] expected, double[,] actual, double tol, string what)
    {
        Assert.Equal(expected.GetLength(0), actual.GetLength(0));
        Assert.Equal(expected.GetLength(1), actual.GetLength(1));
        for (var i = 0; i < expected.GetLength(0); i++)
            for (var j = 0; j < expected.GetLength(1); j++)
                if (!(Math.Abs(expected[i, j] - actual[i, j]) <= tol))
                    Assert.Fail($"{what}[{i}, {j}]: expected {expected[i, j]:R}, got {actual[i, j]:R} (tolerance {tol})");
    }

    public static void AssertClose(double expected, double actual, double tol, string what)
    {
        if (!(Math.Abs(expected - actual) <= tol)) Assert.Fail($"{what}: expected {expected:R}, got {actual:R} (tolerance {tol})");
    }
}
