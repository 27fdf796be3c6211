using Snce.Native.Cuda;
using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// The fused top-k targets from a <see cref="CodeNeighbors"/> table: each row's k nearest codes are looked for among
/// its token's table entries (C codes, not K), kept where that is provably the top-k over the whole codebook, and
/// searched over the whole codebook (<see cref="NeighborTopK"/>) for the remaining rows only.
/// </summary>
/// <remarks>
/// A row's table result is certified when
/// <list type="bullet">
/// <item>its anchor is its token's code (code-anchored targets; any metric): the table row is that code's top-C by definition; or</item>
/// <item>(l2, cosine) with e the Euclidean distance on the prepared vectors (normalized for cosine), r = e(z, c_t),
/// ρ = e(c_t, farthest table entry) and δ = e(z, k-th nearest table entry): δ &lt; ρ − r. Every code c outside the
/// table has e(c_t, c) ≥ ρ, hence e(z, c) ≥ ρ − r &gt; δ, so it cannot be among the k nearest.</item>
/// </list>
/// The inequality is tested with a margin for the fp32 rounding of the table's distances (‖a‖² − 2a·b + ‖b‖²).
/// Unsupervised rows need no certificate. Distances and q are computed in the math dtype (fp32 or fp64) from the
/// anchors and codes as given, not from the compute-dtype score operands, so in bf16 the kept codes' q is more
/// accurate than the full search's (which also picks the codes by bf16 scores).
/// </remarks>
internal static class NeighborSearch
{
    /// <summary>The targets and how they were found.</summary>
    /// <param name="Index">[N, k] int64 code ids.</param>
    /// <param name="Q">[N, k] renormalized q in the math dtype.</param>
    /// <param name="FromTable">Supervised rows whose top-k came from the table.</param>
    /// <param name="Searched">Supervised rows searched over the whole codebook.</param>
    public sealed record Selection(Tensor Index, Tensor Q, long FromTable, long Searched);

    /// <summary>Relative margin on squared distances for fp32 (fp64) rounding of the table and of the row's distances.</summary>
    static double Margin(ScalarType md, ScalarType table) => md == ScalarType.Float64 && table == ScalarType.Float64 ? 1e-12 : 1e-4;

    public static Selection Select(Tensor anchors, Tensor codebook, Tensor tokens, Tensor? mask, Metric metric, double tau, int k,
        CodeNeighbors table, ScoreOperands ops, long budgetBytes, long searchRows, ScalarType md)
    {
        if (table.Size < k) throw new ArgumentException($"the neighbor table holds {table.Size} codes per code, fewer than top-k = {k}; build it with size ≥ {k}");
        var (n, d) = (anchors.shape[0], anchors.shape[1]);
        var numCodes = codebook.shape[0];
        var z = CodeNeighbors.Prepared(anchors, metric, md);
        var c = CodeNeighbors.Prepared(codebook, metric, md);
        var cand = table.Ids.index_select(0, tokens).to(ScalarType.Int64);                     // [N, C]
        var size = table.Size;
        var esize = md == ScalarType.Float64 ? 8L : 4L;
        // The candidates' [rows, C, D] gathers (and two temporaries of that size) within a quarter GiB at most.
        var gatherBytes = Math.Min(budgetBytes, 256L << 20);
        var rowChunk = Math.Clamp(gatherBytes / (3L * size * d * esize), 1, n);

        var index = empty(n, k, dtype: ScalarType.Int64, device: anchors.device);
        var kth = empty(n, dtype: md, device: anchors.device);
        for (long r0 = 0; r0 < n; r0 += rowChunk)
        {
            using var scope = NewDisposeScope();
            var r = Math.Min(rowChunk, n - r0);
            var dist = Distances(z.narrow(0, r0, r), c, cand.narrow(0, r0, r), metric);
            var (v, j) = dist.topk(k, dim: 1, largest: false);
            index.narrow(0, r0, r).copy_(cand.narrow(0, r0, r).gather(1, j));
            kth.narrow(0, r0, r).copy_(v.select(1, k - 1));
        }

        // Certificates, one bool per row.
        var ct = c.index_select(0, tokens);
        var certified = (z == ct).all(1);
        if (size == numCodes) certified = ones(n, dtype: ScalarType.Bool, device: anchors.device); // the table is the codebook
        else if (metric.Name is "l2" or "cosine")
        {
            // Euclidean squared distances on the prepared vectors; cosine's d = −cos gives e² = 2 + 2d.
            var delta2 = metric.Name == "l2" ? kth : 2 + 2 * kth;
            var r2 = (z - ct).pow(2).sum(1);
            var rho = table.Radius.to(md).index_select(0, tokens);
            // Absolute margin for the table's expanded distances (error ∝ ‖c_t‖² + ‖c_j‖²), relative for the row's own.
            var m = Margin(md, table.Radius.dtype);
            var norms = c.pow(2).sum(1);
            var tol = m * (norms.index_select(0, tokens) + norms.max());
            var rhoLow = (rho.pow(2) - tol).clamp_min(0).sqrt();
            var deltaHigh = (delta2 * (1 + m) + tol).sqrt();
            var rHigh = (r2 * (1 + m) + tol).sqrt();
            certified = certified.logical_or(deltaHigh < rhoLow - rHigh);
        }
        var supervised = mask ?? ones(n, dtype: ScalarType.Bool, device: anchors.device);
        var search = supervised.logical_and(certified.logical_not()).nonzero().reshape(-1);        // [S] rows to search fully
        var searched = search.shape[0];                                                           // (one device-to-host copy)
        var fromTable = supervised.sum().item<long>() - searched;
        if (searched > 0)
        {
            var codeChunk = Math.Clamp(budgetBytes / (Math.Min(searchRows, searched) * 2L * TensorMemory.ElementSize(ops.Codes.dtype)), 1, numCodes);
            for (long s0 = 0; s0 < searched; s0 += searchRows)
            {
                using var scope = NewDisposeScope();
                var rows = search.narrow(0, s0, Math.Min(searchRows, searched - s0));
                var (_, idx) = NeighborTopK.Top(ops.Rows.index_select(0, rows), ops.Codes, k, codeChunk);
                index.index_copy_(0, rows, idx);
            }
        }

        // q over the kept codes, from their distances in the math dtype.
        var q = empty(n, k, dtype: md, device: anchors.device);
        var qChunk = Math.Clamp(gatherBytes / (3L * k * d * esize), 1, n);
        for (long r0 = 0; r0 < n; r0 += qChunk)
        {
            using var scope = NewDisposeScope();
            var r = Math.Min(qChunk, n - r0);
            q.narrow(0, r0, r).copy_((Distances(z.narrow(0, r0, r), c, index.narrow(0, r0, r), metric) * (-1.0 / tau)).softmax(1));
        }
        return new Selection(index, q, fromTable, searched);
    }

    /// <summary>d(z_i, c_{ids[i, j]}) [rows, C] by the metric (l2: ‖z − c‖², dot: −z·c, cosine: −ẑ·ĉ on prepared vectors).</summary>
    internal static Tensor Distances(Tensor z, Tensor codes, Tensor ids, Metric metric)
    {
        var (r, cc) = (ids.shape[0], ids.shape[1]);
        var g = codes.index_select(0, ids.reshape(-1)).view(r, cc, codes.shape[1]);
        var zz = z.unsqueeze(1);
        return metric.Name switch
        {
            "l2" => (g - zz).pow(2).sum(2),
            "dot" or "cosine" => -(g * zz).sum(2),
            _ => throw new ArgumentException($"the fused top-k has no neighbor search for metric '{metric.Name}'; it supports {Metric.Allowed}"),
        };
    }
}
