using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// A code dissimilarity d(z, c): the ONE definition shared by the tokenizer's quantization rule
/// (argmin_k d(z, c_k)) and SNCE's neighbor targets (softmax_k(−d(z, c_k)/τ)), so the two can never disagree.
/// </summary>
/// <remarks>
/// l2: squared Euclidean ‖z−c‖² (FVQ, the usual VQ rule); dot: −z·c (IBQ); cosine: −cos(z, c).
/// </remarks>
public abstract class Metric
{
    /// <summary>Squared Euclidean distance ‖z − c‖².</summary>
    public static readonly Metric L2 = new L2Metric();
    /// <summary>Negative dot product −z·c (IBQ).</summary>
    public static readonly Metric Dot = new DotMetric();
    /// <summary>Negative cosine similarity −cos(z, c).</summary>
    public static readonly Metric Cosine = new CosineMetric();

    /// <summary>The accepted names, for help and error text.</summary>
    public const string Allowed = "l2, dot, cosine";

    /// <summary>The metric's name as used on the command line and in checkpoints.</summary>
    public abstract string Name { get; }

    /// <summary>Looks a metric up by name; throws naming the allowed ones.</summary>
    public static Metric Parse(string? name) => name?.ToLowerInvariant() switch
    {
        "l2" => L2,
        "dot" => Dot,
        "cosine" => Cosine,
        null => throw new ArgumentException($"no metric given (null); use one of {Allowed}"),
        _ => throw new ArgumentException($"unknown metric '{name}'; use one of {Allowed}"),
    };

    /// <summary>All pairwise dissimilarities: z [N, D], codebook [K, D] → d [N, K] (dtype of z).</summary>
    public Tensor Distance(Tensor z, Tensor codebook)
    {
        CheckShapes(z, codebook);
        return DistanceCore(z, codebook);
    }

    /// <summary>
    /// The quantization rule argmin_k d(z, c_k): z [N, D] → indices [N] (int64), computed in blocks of
    /// <paramref name="rowChunk"/> × <paramref name="codeChunk"/> so that K = 262,144 fits in memory.
    /// Ties go to the lowest index, as in torch.argmin.
    /// </summary>
    public Tensor Quantize(Tensor z, Tensor codebook, int rowChunk = 4096, int codeChunk = 16384)
    {
        CheckShapes(z, codebook);
        var n = z.shape[0];
        var k = codebook.shape[0];
        using var scope = NewDisposeScope();
        var result = empty(n, dtype: ScalarType.Int64, device: z.device);
        using (no_grad())
        {
            var prepared = Prepare(codebook.detach());
            for (long r0 = 0; r0 < n; r0 += rowChunk)
            {
                using var rowScope = NewDisposeScope();
                var zr = z.detach().narrow(0, r0, Math.Min(rowChunk, n - r0));
                Tensor? best = null, bestIdx = null;
                for (long c0 = 0; c0 < k; c0 += codeChunk)
                {
                    var len = Math.Min(codeChunk, k - c0);
                    var d = DistanceCore(zr, prepared.narrow(0, c0, len), prepared: true);
                    var (v, i) = d.min(1);
                    i = i + c0;
                    if (best is null) (best, bestIdx) = (v, i);
                    else
                    {
                        var better = v < best; // strict: earlier chunk wins ties
                        best = where(better, v, best);
                        bestIdx = where(better, i, bestIdx!);
                    }
                }
                result.narrow(0, r0, zr.shape[0]).copy_(bestIdx!);
            }
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Per-metric preprocessing of the codebook that Quantize can reuse across row blocks (e.g. normalization).</summary>
    protected virtual Tensor Prepare(Tensor codebook) => codebook;

    /// <summary>d for all pairs; when <paramref name="prepared"/> the codebook already went through <see cref="Prepare"/>.</summary>
    protected abstract Tensor DistanceCore(Tensor z, Tensor codebook, bool prepared = false);

    static void CheckShapes(Tensor z, Tensor codebook)
    {
        if (z.dim() != 2 || codebook.dim() != 2)
            throw new ArgumentException($"expected z [N, D] and codebook [K, D], got z [{string.Join(", ", z.shape)}] and codebook [{string.Join(", ", codebook.shape)}]");
        if (z.shape[1] != codebook.shape[1])
            throw new ArgumentException($"code dimension mismatch: z has D = {z.shape[1]}, codebook has D = {codebook.shape[1]}");
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    sealed class L2Metric : Metric
    {
        public override string Name => "l2";
        // ‖z−c‖² = ‖z‖² − 2 z·c + ‖c‖², clamped at 0 against rounding.
        protected override Tensor DistanceCore(Tensor z, Tensor c, bool prepared) =>
            (z.pow(2).sum(1, keepdim: true) - 2 * z.matmul(c.t()) + c.pow(2).sum(1).unsqueeze(0)).clamp_min(0);
    }

    sealed class DotMetric : Metric
    {
        public override string Name => "dot";
        protected override Tensor DistanceCore(Tensor z, Tensor c, bool prepared) => -z.matmul(c.t());
    }

    sealed class CosineMetric : Metric
    {
        public override string Name => "cosine";
        const double Eps = 1e-12;
        protected override Tensor Prepare(Tensor c) => nn.functional.normalize(c, p: 2, dim: 1, eps: Eps);
        protected override Tensor DistanceCore(Tensor z, Tensor c, bool prepared) =>
            -nn.functional.normalize(z, p: 2, dim: 1, eps: Eps).matmul((prepared ? c : Prepare(c)).t());
    }
}
