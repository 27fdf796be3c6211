using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>The outcome of a τ search: the τ chosen and how the perplexity 2^H(q) of its targets spreads over the anchors.</summary>
/// <param name="Tau">The global temperature found.</param>
/// <param name="TargetPerplexity">The mean perplexity asked for.</param>
/// <param name="MeanPerplexity">Mean over the anchors of 2^H(q) at <paramref name="Tau"/> (H in bits).</param>
/// <param name="StdPerplexity">Its standard deviation over the anchors (population).</param>
/// <param name="MinPerplexity">Smallest per-anchor perplexity (sparse regions of the codebook).</param>
/// <param name="MaxPerplexity">Largest per-anchor perplexity (dense regions).</param>
/// <param name="Iterations">Bisection steps taken (after bracketing).</param>
/// <param name="Anchors">Number of anchors in the sample.</param>
/// <param name="TopK">k when the targets are truncated to the k nearest codes; null for the full codebook.</param>
public sealed record TauCalibrationResult(
    double Tau, double TargetPerplexity, double MeanPerplexity, double StdPerplexity,
    double MinPerplexity, double MaxPerplexity, int Iterations, long Anchors, int? TopK);

/// <summary>
/// Finds ONE global τ such that the mean perplexity 2^H(q(·|z)) over a sample of anchors hits a target
/// (the effective number of neighbors). Unlike t-SNE, τ is shared by all points: dense codebook regions
/// then spread mass over more neighbors than sparse ones, which the result's spread reports.
/// </summary>
/// <remarks>
/// The mean perplexity rises monotonically from the number of tied nearest codes (1 without ties) at τ → 0
/// to K (or k) at τ → ∞, so bisection in log τ converges: first bracket the target by factors of 10 from
/// the typical distance range, then halve the bracket (in log τ) until |achieved/target − 1| &lt; 1e-3
/// or the bracket collapses. Entropies are computed in float64.
/// </remarks>
public static class TauCalibration
{
    /// <summary>Stop when the achieved mean perplexity is within this relative distance of the target.</summary>
    public const double Tolerance = 1e-3;
    const int MaxBracketSteps = 60, MaxBisections = 200;
    /// <summary>Cache the anchors' distances when they fit in this many float64 values (256 MiB); else recompute them per step.</summary>
    const long CacheElements = 1L << 25;

    /// <summary>
    /// Calibrates τ on <paramref name="anchors"/> [M, D] (latents, or code vectors for code-anchored targets)
    /// against <paramref name="codebook"/> [K, D]. With <paramref name="topK"/> the targets are the truncated,
    /// renormalized ones and the target must lie in (1, k); otherwise in (1, K).
    /// </summary>
    public static TauCalibrationResult Calibrate(Tensor anchors, Tensor codebook, Metric metric, double targetPerplexity,
        int? topK = null, int rowChunk = 1024)
    {
        var numCodes = codebook.shape[0];
        if (anchors.dim() != 2 || anchors.shape[0] < 1)
            throw new ArgumentException($"calibration anchors must be [M, D] with M ≥ 1, got {LossInputs.Shape(anchors)}");
        if (topK is { } k0 && (k0 < 1 || k0 > numCodes))
            throw new ArgumentException($"top-k must be in [1, K = {numCodes}], got k = {k0}");
        var upper = topK ?? numCodes;
        if (!(targetPerplexity > 1 && targetPerplexity < upper))
            throw new ArgumentException(
                $"target perplexity {targetPerplexity} is out of range: it must be in (1, {upper}) " +
                (topK is null ? $"for the full codebook of K = {numCodes} codes" : $"for targets truncated to the top-k = {topK} codes"));

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Search(new AnchorDistances(anchors, codebook, metric, topK, rowChunk), targetPerplexity, anchors.shape[0], topK);
    }

    /// <summary>
    /// Calibrates τ for top-k targets from each anchor's distances to its k nearest codes, [M, k] (a token shard's stored
    /// latent neighbours): the same search as <see cref="Calibrate"/> with top-k = k, which reads nothing else of the anchors.
    /// </summary>
    public static TauCalibrationResult CalibrateOnDistances(Tensor nearestDistances, double targetPerplexity)
    {
        if (nearestDistances.dim() != 2 || nearestDistances.shape[0] < 1 || nearestDistances.shape[1] < 1 || !nearestDistances.is_floating_point())
            throw new ArgumentException($"neighbour distances must be float [M, k] with M, k ≥ 1, got {LossInputs.Shape(nearestDistances)} {nearestDistances.dtype}");
        var k = (int)nearestDistances.shape[1];
        if (!(targetPerplexity > 1 && targetPerplexity < k))
            throw new ArgumentException($"target perplexity {targetPerplexity} is out of range: it must be in (1, {k}) for targets truncated to the top-k = {k} codes");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Search(new AnchorDistances(nearestDistances), targetPerplexity, nearestDistances.shape[0], k);
    }

    static TauCalibrationResult Search(AnchorDistances distances, double targetPerplexity, long anchors, int? topK)
    {
        // Typical scale of the distances: the mean over anchors of (largest − smallest) kept distance.
        var scale = distances.PerRow(d => d.max(1).values - d.min(1).values).mean().item<double>();
        if (!(scale > 0) || double.IsInfinity(scale))
            throw new ArgumentException($"cannot calibrate τ: every anchor is at the same distance from all {(topK is null ? "codes" : "kept codes")} (mean distance range {scale}); the codebook looks degenerate");

        Stats Eval(double tau) => Evaluate(distances, tau);
        double lo = scale, hi = scale;
        var atLo = Eval(lo);
        for (var i = 0; atLo.Mean > targetPerplexity; i++)
        {
            if (i == MaxBracketSteps)
                throw new ArgumentException($"cannot reach perplexity {targetPerplexity}: even τ = {lo:G3} gives {atLo.Mean:G6} (codes tied at the same distance from the anchors?)");
            hi = lo; lo /= 10; atLo = Eval(lo);
        }
        var atHi = Eval(hi);
        for (var i = 0; atHi.Mean < targetPerplexity; i++)
        {
            if (i == MaxBracketSteps)
                throw new ArgumentException($"cannot reach perplexity {targetPerplexity}: even τ = {hi:G3} gives {atHi.Mean:G6}");
            lo = hi; hi *= 10; atHi = Eval(hi);
        }

        // Bisection in log τ; keep the best point seen.
        var (bestTau, best) = Math.Abs(atLo.Mean / targetPerplexity - 1) < Math.Abs(atHi.Mean / targetPerplexity - 1) ? (lo, atLo) : (hi, atHi);
        var steps = 0;
        while (Math.Abs(best.Mean / targetPerplexity - 1) >= Tolerance && hi / lo > 1 + 1e-12 && steps < MaxBisections)
        {
            steps++;
            var mid = Math.Sqrt(lo * hi);
            var at = Eval(mid);
            if (Math.Abs(at.Mean / targetPerplexity - 1) < Math.Abs(best.Mean / targetPerplexity - 1)) (bestTau, best) = (mid, at);
            if (at.Mean < targetPerplexity) lo = mid; else hi = mid;
        }
        return new TauCalibrationResult(bestTau, targetPerplexity, best.Mean, best.Std, best.Min, best.Max, steps, anchors, topK);
    }

    /// <summary>Perplexity statistics of the targets at a given τ over the anchors (the same numbers a calibration reports).</summary>
    public static TauCalibrationResult Measure(Tensor anchors, Tensor codebook, Metric metric, double tau, int? topK = null, int rowChunk = 1024)
    {
        NeighborTargets.CheckTau(tau);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var s = Evaluate(new AnchorDistances(anchors, codebook, metric, topK, rowChunk), tau);
        return new TauCalibrationResult(tau, double.NaN, s.Mean, s.Std, s.Min, s.Max, 0, anchors.shape[0], topK);
    }

    readonly record struct Stats(double Mean, double Std, double Min, double Max);

    static Stats Evaluate(AnchorDistances distances, double tau)
    {
        using var scope = NewDisposeScope();
        var ppl = distances.PerRow(d => NeighborTargets.Perplexity(NeighborTargets.LogSoftmaxOfNegative(d, tau)));
        return new Stats(ppl.mean().item<double>(), ppl.std(unbiased: false).item<double>(), ppl.min().item<double>(), ppl.max().item<double>());
    }

    /// <summary>
    /// The anchors' distances in float64 row chunks: the k nearest (computed once) for top-k; for the full
    /// codebook cached when small, else recomputed chunk by chunk on each pass, so a pass never holds [M, K].
    /// </summary>
    sealed class AnchorDistances
    {
        readonly List<Tensor>? cached;
        readonly Func<int, Tensor>? compute;                                  // row chunk i of the full distances, when not cached
        readonly int chunks;

        /// <summary>Distances given: [M, k], each anchor's nearest codes only.</summary>
        public AnchorDistances(Tensor nearestDistances) => cached = [nearestDistances.detach().to_type(ScalarType.Float64)];

        public AnchorDistances(Tensor anchors, Tensor codebook, Metric metric, int? topK, int rowChunk)
        {
            var ct = LossInputs.ComputeType(anchors.dtype, codebook.dtype);
            var (z, c) = (anchors.detach().to_type(ct), codebook.detach().to_type(ct));
            if (topK is { } k)
            {
                var nearest = NeighborTargets.Nearest(z, c, metric, k);
                cached = [nearest.Distances.to_type(ScalarType.Float64)];
                return;
            }
            var rows = Math.Max(rowChunk, 1);
            chunks = (int)((z.shape[0] + rows - 1) / rows);
            compute = i =>
            {
                var r0 = (long)i * rows;
                return metric.Distance(z.narrow(0, r0, Math.Min(rows, z.shape[0] - r0)), c).to_type(ScalarType.Float64);
            };
            if (z.shape[0] * c.shape[0] <= CacheElements) cached = Enumerable.Range(0, chunks).Select(compute).ToList();
        }

        /// <summary>Applies a row-wise reduction [rows, k] → [rows] to every chunk, each in its own scope, and concatenates.</summary>
        public Tensor PerRow(Func<Tensor, Tensor> f)
        {
            using var scope = NewDisposeScope();
            var parts = new List<Tensor>();
            var count = cached?.Count ?? chunks;
            for (var i = 0; i < count; i++)
            {
                using var chunkScope = NewDisposeScope();
                parts.Add(f(cached is null ? compute!(i) : cached[i]).MoveToOuterDisposeScope());
            }
            return cat(parts, 0).MoveToOuterDisposeScope();
        }
    }
}
