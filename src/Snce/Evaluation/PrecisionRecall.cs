using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>Improved precision and recall of a generated set against a real one, with the k-NN radius used.</summary>
public sealed record PrecisionRecallResult(double Precision, double Recall, int K);

/// <summary>
/// Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019, "Improved Precision and Recall Metric for
/// Assessing Generative Models"). Each set's manifold is the union of balls around its points whose radius is
/// the distance to the point's k-th nearest neighbour in the same set. Precision = share of generated points
/// inside the real manifold; recall = share of real points inside the generated manifold.
/// </summary>
/// <remarks>Distances are Euclidean, in float64, computed in row chunks so memory stays O(chunk × N).</remarks>
public static class PrecisionRecall
{
    /// <summary>Default neighbourhood size (the paper's k = 3).</summary>
    public const int DefaultK = 3;

    /// <param name="real">features [N, D] of real images.</param>
    /// <param name="generated">features [M, D] of generated images.</param>
    /// <param name="k">neighbourhood size; each set needs more than k points.</param>
    /// <param name="chunk">rows per distance block.</param>
    /// <param name="device">where the distances are computed (default the CPU).</param>
    public static PrecisionRecallResult Compute(Tensor real, Tensor generated, int k = DefaultK, int chunk = 2048, Device? device = null)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
        if (real.dim() != 2 || generated.dim() != 2 || real.shape[1] != generated.shape[1])
            throw new ArgumentException($"features must be [N, D] and [M, D] with the same D; got [{string.Join(", ", real.shape)}] and [{string.Join(", ", generated.shape)}]");
        foreach (var (set, name) in new[] { (real, "real"), (generated, "generated") })
            if (set.shape[0] <= k) throw new ArgumentException($"the {name} set has {set.shape[0]} points; k = {k} needs at least {k + 1}");
        using var scope = NewDisposeScope();
        var r = real.to(device ?? CPU).to(ScalarType.Float64);
        var g = generated.to(device ?? CPU).to(ScalarType.Float64);
        var precision = Coverage(r, KnnRadii(r, k, chunk), g, chunk);
        var recall = Coverage(g, KnnRadii(g, k, chunk), r, chunk);
        return new PrecisionRecallResult(precision, recall, k);
    }

    /// <summary>Distance of each point of <paramref name="x"/> [N, D] to its k-th nearest other point: [N], in the dtype of <paramref name="x"/>.</summary>
    public static Tensor KnnRadii(Tensor x, int k, int chunk = 2048)
    {
        using var scope = NewDisposeScope();
        var n = x.shape[0];
        var parts = new List<Tensor>();
        for (long i = 0; i < n; i += chunk)
        {
            var d = SquaredDistances(x.narrow(0, i, Math.Min(chunk, n - i)), x);
            // The k+1-th smallest: the smallest is the point itself (distance 0).
            parts.Add(d.kthvalue(k + 1, 1).values);
        }
        return cat(parts, 0).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>Share of <paramref name="queries"/> within radius[j] of at least one manifold point j.</summary>
    static double Coverage(Tensor manifold, Tensor radii, Tensor queries, int chunk)
    {
        var radiiSquared = radii.square().unsqueeze(0);
        long inside = 0;
        for (long i = 0; i < queries.shape[0]; i += chunk)
        {
            using var scope = NewDisposeScope();
            var d = SquaredDistances(queries.narrow(0, i, Math.Min(chunk, queries.shape[0] - i)), manifold);
            inside += (d <= radiiSquared).any(1).sum().item<long>();
        }
        return (double)inside / queries.shape[0];
    }

    /// <summary>‖aᵢ − bⱼ‖² for a [P, D], b [Q, D] → [P, Q], clamped at 0 against round-off.</summary>
    static Tensor SquaredDistances(Tensor a, Tensor b) =>
        (a.square().sum(1, keepdim: true) + b.square().sum(1).unsqueeze(0) - 2 * a.matmul(b.t())).clamp_min(0);
}
