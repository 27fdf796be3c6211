using Snce.Losses;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// The k nearest codes of query vectors under a <see cref="Metric"/>, computed in row blocks of about
/// <see cref="BlockElements"/> distances, so K = 262,144 fits in memory on CPU and GPU. Used for the
/// code-anchored neighbor table (queries = the codes themselves) and for per-position latent neighbors.
/// </summary>
public static class NearestCodes
{
    /// <summary>Distances per block (rows × K); 2^26 floats = 256 MiB plus top-k workspace.</summary>
    public const long BlockElements = 1L << 26;

    /// <summary>
    /// queries [N, D], codes [K, D] → ids int32 [N, k] and distances float32 [N, k], nearest first (ascending d).
    /// Runs on the inputs' device; results stay there.
    /// </summary>
    public static (Tensor Ids, Tensor Distances) TopK(Metric metric, Tensor queries, Tensor codes, int k, long blockElements = BlockElements)
    {
        var (n, size) = (queries.shape[0], codes.shape[0]);
        if (k < 1 || k > size) throw new ArgumentException($"neighbors k must be in [1, {size}] (the codebook size), got {k}");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = empty(n, k, dtype: ScalarType.Int32, device: queries.device);
        var dist = empty(n, k, dtype: ScalarType.Float32, device: queries.device);
        var rows = Math.Max(1, blockElements / size);
        for (long r0 = 0; r0 < n; r0 += rows)
        {
            using var block = NewDisposeScope();
            var len = Math.Min(rows, n - r0);
            var d = metric.Distance(queries.narrow(0, r0, len), codes);
            var (v, i) = d.topk(k, dim: 1, largest: false, sorted: true);
            ids.narrow(0, r0, len).copy_(i);
            dist.narrow(0, r0, len).copy_(v);
        }
        return (ids.MoveToOuterDisposeScope(), dist.MoveToOuterDisposeScope());
    }
}
