using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// A codebook's neighbor table for the fused top-k path: the <see cref="Size"/> nearest codes of every code and
/// the radius of that set, so that a row's top-k can be searched among its token's neighbors instead of the whole
/// codebook. Built once per codebook (the tokenizer's codebook is frozen while a generator trains).
/// </summary>
/// <remarks>
/// Exactness: a row's top-k taken from the table is used only when it is provably the top-k over the whole codebook —
/// the anchor is its token's code (code-anchored targets, any metric), or, for l2 and cosine, the triangle inequality
/// rules every code outside the table out (<see cref="NeighborSearch"/>). Other rows are searched over the whole
/// codebook as before. Distances are in fp32 (fp64 for an fp64 codebook), on the codebook as given.
/// </remarks>
public sealed class CodeNeighbors : IDisposable
{
    /// <summary>[K, Size] int32: for each code, its <see cref="Size"/> nearest codes by the metric, nearest first (itself first for l2 and cosine).</summary>
    internal Tensor Ids { get; }

    /// <summary>
    /// [K]: for l2 and cosine, the Euclidean distance (on the normalized codes for cosine) from each code to its farthest
    /// table entry — every code outside the table is at least this far (up to the rounding margin in <see cref="NeighborSearch"/>).
    /// </summary>
    internal Tensor Radius { get; }

    /// <summary>Neighbors per code.</summary>
    public int Size { get; }

    /// <summary>The metric the table was built with.</summary>
    public Metric Metric { get; }

    /// <summary>K, the number of codes.</summary>
    public long NumCodes => Ids.shape[0];

    readonly (double Sum, double Norm, long D) fingerprint;

    CodeNeighbors(Tensor ids, Tensor radius, int size, Metric metric, (double, double, long) fingerprint) =>
        (Ids, Radius, Size, Metric, this.fingerprint) = (ids, radius, size, metric, fingerprint);

    /// <summary>The table size the fused loss uses for top-k <paramref name="k"/>: 2k (at least k + 16), at most K.</summary>
    public static int DefaultSize(int k, long numCodes) => (int)Math.Min(numCodes, Math.Max(2L * k, k + 16L));

    /// <summary>
    /// Builds the table: the <paramref name="size"/> nearest codes of each of the K codes (blocked, so K = 262,144 never
    /// allocates [K, K]; it costs one K × K distance pass, like <see cref="NeighborTargets.CodeTable"/>).
    /// </summary>
    /// <param name="codebook">[K, D] float codebook (on the device the loss runs on).</param>
    /// <param name="metric">The metric of the targets.</param>
    /// <param name="size">Neighbors per code, in [1, K]; the fused top-k needs at least k, and larger tables certify more rows.</param>
    /// <returns>A table owned by the caller (not by any dispose scope): dispose it when the codebook is done with.</returns>
    public static CodeNeighbors Build(Tensor codebook, Metric metric, int size)
    {
        ArgumentNullException.ThrowIfNull(metric);
        if (codebook.dim() != 2 || !codebook.is_floating_point())
            throw new ArgumentException($"codebook must be a float [K, D] tensor, got [{string.Join(", ", codebook.shape)}] {codebook.dtype}");
        var k = codebook.shape[0];
        if (size < 1 || size > k) throw new ArgumentException($"the neighbor table size must be in [1, K = {k}], got {size}");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var c = Prepared(codebook, metric, codebook.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        using var nearest = NeighborTargets.CodeTable(c, metric, size);
        var ids = nearest.Ids.to(ScalarType.Int32);
        var far = c.index_select(0, nearest.Ids.select(1, size - 1));
        var radius = (far - c).pow(2).sum(1).sqrt();
        // Long-lived by design (held across steps, disposed by its owner): not tied to the caller's dispose scope.
        return new CodeNeighbors(ids.DetachFromDisposeScope(), radius.DetachFromDisposeScope(), size, metric, Fingerprint(codebook));
    }

    /// <summary>
    /// Vectors as the neighbor search measures them: in <paramref name="dtype"/>, L2-normalized for cosine (so that
    /// Euclidean distances between prepared vectors order codes as the metric does).
    /// </summary>
    internal static Tensor Prepared(Tensor vectors, Metric metric, ScalarType dtype)
    {
        var v = vectors.detach().to(dtype);
        return metric.Name == "cosine" ? nn.functional.normalize(v, p: 2, dim: 1, eps: 1e-12) : v;
    }

    /// <summary>
    /// Throws when <paramref name="codebook"/> is evidently not the one the table was built from: another metric or
    /// shape, or (when <paramref name="fingerprint"/>: one device-to-host copy) Σc or ‖c‖ differing by more than 1e-4
    /// relative — a guard against a stale table, not a proof of identity.
    /// </summary>
    internal void CheckMatches(Tensor codebook, Metric metric, bool fingerprint)
    {
        if (metric.Name != Metric.Name)
            throw new ArgumentException($"the neighbor table was built for metric '{Metric.Name}', the loss uses '{metric.Name}'; build it with the loss's metric");
        if (codebook.shape[0] != NumCodes || codebook.shape[1] != this.fingerprint.D)
            throw new ArgumentException($"the neighbor table was built for a [{NumCodes}, {this.fingerprint.D}] codebook, got [{string.Join(", ", codebook.shape)}]; rebuild it (CodeNeighbors.Build)");
        if (!fingerprint) return;
        var (sum, norm, _) = Fingerprint(codebook);
        static bool Near(double a, double b, double scale) => Math.Abs(a - b) <= 1e-4 * scale;
        if (!Near(norm, this.fingerprint.Norm, this.fingerprint.Norm) || !Near(sum, this.fingerprint.Sum, Math.Max(Math.Abs(this.fingerprint.Sum), this.fingerprint.Norm * 1e-3)))
            throw new ArgumentException("the neighbor table was built from a different codebook (its sum or norm differs); rebuild it (CodeNeighbors.Build) after the codebook changes");
    }

    /// <summary>(Σc, ‖c‖, D): reductions without an [K, D] temporary, one device-to-host copy.</summary>
    static (double, double, long) Fingerprint(Tensor codebook)
    {
        using var scope = NewDisposeScope();
        var c = codebook.detach();
        var v = stack([c.sum(), c.norm()]).to(ScalarType.Float64).cpu().data<double>().ToArray();
        return (v[0], v[1], codebook.shape[1]);
    }

    /// <inheritdoc/>
    public void Dispose() { Ids.Dispose(); Radius.Dispose(); }
}
