using System.ComponentModel;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>Where the neighbor target is anchored.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NeighborAnchor>)), Description("anchor")]
public enum NeighborAnchor
{
    /// <summary>z = the encoder's continuous latent of each position (TokenTargets.Latents).</summary>
    [JsonStringEnumMemberName("latent")] Latent,
    /// <summary>z = c_x, the code vector of the ground-truth token (pre-tokenized data); needs only the codebook.</summary>
    [JsonStringEnumMemberName("code")] Code,
}

/// <summary>The k nearest codes of each anchor by the metric, nearest first: ids [N, k] int64 and d(z, c_id) [N, k].</summary>
/// <remarks>Does not depend on τ, so a τ search (or a shard's stored neighbor table) reuses it.</remarks>
public sealed record NearestCodes(Tensor Ids, Tensor Distances) : IDisposable
{
    /// <summary>The truncated, renormalized targets at temperature τ: log q = log_softmax(−d/τ) over the k kept codes.</summary>
    public TopKTargets Targets(double tau)
    {
        NeighborTargets.CheckTau(tau);
        using var scope = NewDisposeScope();
        var logq = NeighborTargets.LogSoftmaxOfNegative(Distances, tau);
        return new TopKTargets(Ids.alias().MoveToOuterDisposeScope(), logq.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public void Dispose() { Ids.Dispose(); Distances.Dispose(); }
}

/// <summary>Truncated neighbor targets: for each row the k nearest codes (ids [N, k] int64) and log q over them ([N, k], each row a distribution).</summary>
public sealed record TopKTargets(Tensor Ids, Tensor LogProbs) : IDisposable
{
    /// <summary>q = exp(LogProbs), [N, k].</summary>
    public Tensor Probs() => LogProbs.exp();

    /// <summary>Rows of a per-code table ([K, k], code-anchored) for the given tokens [N] → [N, k].</summary>
    public TopKTargets Lookup(Tensor tokens) => new(Ids.index_select(0, tokens), LogProbs.index_select(0, tokens));

    /// <summary>The same targets as a dense [N, K] distribution (zeros outside the kept codes), in <paramref name="dtype"/>.</summary>
    public Tensor ToDense(long numCodes, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var dense = zeros(Ids.shape[0], numCodes, dtype: dtype, device: Ids.device);
        return dense.scatter_(1, Ids, LogProbs.exp().to_type(dtype)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose() { Ids.Dispose(); LogProbs.Dispose(); }
}

/// <summary>
/// SNCE's neighbor targets q(k | z) = softmax_k(−d(z, c_k) / τ) with the one <see cref="Metric"/> that also
/// quantizes, so argmax_k q(k | z) is always the token the tokenizer picks. Everything is computed in log
/// space (log_softmax), which stays finite for τ = 1e-4 with distances around 1e4. Targets are constants:
/// no gradient flows into the latents or the codebook.
/// </summary>
public static class NeighborTargets
{
    /// <summary>Full-codebook log q: z [N, D], codebook [K, D] → [N, K] (float64 if either input is float64, else float32).</summary>
    public static Tensor LogProbs(Tensor z, Tensor codebook, Metric metric, double tau)
    {
        CheckTau(tau);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ct = LossInputs.ComputeType(z.dtype, codebook.dtype);
        var d = metric.Distance(z.detach().to_type(ct), codebook.detach().to_type(ct));
        return LogSoftmaxOfNegative(d, tau).MoveToOuterDisposeScope();
    }

    /// <summary>Full-codebook q = exp(<see cref="LogProbs"/>), [N, K]; rows sum to 1.</summary>
    public static Tensor Probs(Tensor z, Tensor codebook, Metric metric, double tau)
    {
        using var logq = LogProbs(z, codebook, metric, tau);
        return logq.exp();
    }

    /// <summary>Top-k truncated targets: q renormalized over the k codes nearest to each z (smallest d), without an [N, K] target.</summary>
    public static TopKTargets TopK(Tensor z, Tensor codebook, Metric metric, double tau, int k, int rowChunk = 4096, int codeChunk = 16384)
    {
        CheckTau(tau);
        using var nearest = Nearest(z, codebook, metric, k, rowChunk, codeChunk);
        return nearest.Targets(tau);
    }

    /// <summary>
    /// The code-anchored table for a codebook: the k nearest codes of every code c_x and their distances ([K, k]).
    /// Computed in blocks of <paramref name="rowChunk"/> × <paramref name="codeChunk"/>, so K = 262,144 never
    /// allocates [K, K]. Turn it into targets with <see cref="NearestCodes.Targets"/> and pick rows with
    /// <see cref="TopKTargets.Lookup"/>. For l2 and cosine the first neighbor of c_x is x itself (unless codes
    /// coincide); for dot it is the code with the largest projection on c_x, which may be another one.
    /// </summary>
    public static NearestCodes CodeTable(Tensor codebook, Metric metric, int k, int rowChunk = 1024, int codeChunk = 16384) =>
        Nearest(codebook, codebook, metric, k, rowChunk, codeChunk);

    /// <summary>
    /// The k codes nearest to each z (smallest d first): ids [N, k] int64, distances [N, k]. Computed in blocks with
    /// a running top-k merge, so memory is O(rowChunk × (codeChunk + k)) whatever K is.
    /// </summary>
    public static NearestCodes Nearest(Tensor z, Tensor codebook, Metric metric, int k, int rowChunk = 4096, int codeChunk = 16384)
    {
        var numCodes = codebook.shape[0];
        if (k < 1 || k > numCodes)
            throw new ArgumentException($"top-k must be in [1, K = {numCodes}], got k = {k}");
        if (rowChunk < 1 || codeChunk < 1) throw new ArgumentException($"chunk sizes must be positive, got {rowChunk} × {codeChunk}");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ct = LossInputs.ComputeType(z.dtype, codebook.dtype);
        var (zc, cc) = (z.detach().to_type(ct), codebook.detach().to_type(ct));
        var n = zc.shape[0];
        var ids = empty(n, k, dtype: ScalarType.Int64, device: zc.device);
        var dist = empty(n, k, dtype: ct, device: zc.device);
        for (long r0 = 0; r0 < n; r0 += rowChunk)
        {
            using var rowScope = NewDisposeScope();
            var rows = Math.Min(rowChunk, n - r0);
            var zr = zc.narrow(0, r0, rows);
            Tensor? bestD = null, bestI = null;
            for (long c0 = 0; c0 < numCodes; c0 += codeChunk)
            {
                var len = Math.Min(codeChunk, numCodes - c0);
                var d = metric.Distance(zr, cc.narrow(0, c0, len));
                var (v, i) = d.topk((int)Math.Min(k, len), dim: 1, largest: false);
                i = i + c0;
                if (bestD is null) (bestD, bestI) = (v, i);
                else
                {
                    var catD = cat([bestD, v], 1);
                    var catI = cat([bestI!, i], 1);
                    var (v2, j) = catD.topk((int)Math.Min(k, catD.shape[1]), dim: 1, largest: false);
                    (bestD, bestI) = (v2, catI.gather(1, j));
                }
            }
            dist.narrow(0, r0, rows).copy_(bestD!);
            ids.narrow(0, r0, rows).copy_(bestI!);
        }
        return new NearestCodes(ids.MoveToOuterDisposeScope(), dist.MoveToOuterDisposeScope());
    }

    /// <summary>Row-wise entropy H(q) = −Σ_k q_k log q_k in nats from log q [..., K] (0·log 0 = 0) → [...].</summary>
    public static Tensor Entropy(Tensor logProbs)
    {
        using var scope = NewDisposeScope();
        var q = logProbs.exp();
        var terms = where(q > 0, q * logProbs, zeros_like(q));
        return (-terms.sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>Row-wise perplexity 2^H(q) with H in bits, = e^H with H in nats: the effective number of neighbors.</summary>
    public static Tensor Perplexity(Tensor logProbs)
    {
        using var h = Entropy(logProbs);
        return h.exp();
    }

    internal static Tensor LogSoftmaxOfNegative(Tensor distances, double tau) =>
        (distances / -tau).log_softmax(-1);

    internal static void CheckTau(double tau)
    {
        if (!(tau > 0) || double.IsInfinity(tau))
            throw new ArgumentException($"τ (tau) must be a finite number > 0, got {tau}");
    }
}
