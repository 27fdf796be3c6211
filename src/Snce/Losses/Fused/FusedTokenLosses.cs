using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// SNCE as an <see cref="ITokenLoss"/> on given logits, through <see cref="FusedSnce.Forward"/>: what
/// <see cref="LossFactory"/> builds for implementation "fused". Same conventions and metrics as <see cref="SnceLoss"/>;
/// q and log p are never materialized as [N, K] beyond one row block; through <see cref="ForwardLinear"/> (which the
/// objectives prefer) neither are the logits.
/// </summary>
public sealed class FusedSnceLoss : IHiddenStateLoss, IDisposable
{
    readonly Tensor codebook;
    CodeNeighbors? neighbors; // top-k: the codebook's neighbor table, built on first use on the logits' device

    /// <summary>Fused SNCE over <paramref name="codebook"/> [K, D] with a given τ.</summary>
    public FusedSnceLoss(Tensor codebook, Metric metric, double tau, NeighborAnchor anchor = NeighborAnchor.Latent, int? topK = null, FusedOptions? options = null)
    {
        if (codebook.dim() != 2 || !codebook.is_floating_point())
            throw new ArgumentException($"codebook must be a float [K, D] tensor, got [{string.Join(", ", codebook.shape)}] {codebook.dtype}");
        if (!(tau > 0) || double.IsInfinity(tau)) throw new ArgumentException($"tau must be a positive finite number, got {tau}");
        if (topK is { } k && (k < 1 || k > codebook.shape[0])) throw new ArgumentException($"top-k must be in [1, K = {codebook.shape[0]}], got k = {k}");
        using var scope = NewDisposeScope();
        this.codebook = codebook.detach().DetachFromDisposeScope(); // held for the loss's lifetime
        (Metric, Tau, Anchor, TopK, Options) = (metric, tau, anchor, topK, options ?? FusedOptions.Default);
    }

    /// <inheritdoc/>
    public string Name => LossKind.Snce.Name();
    /// <summary>The metric d of the targets.</summary>
    public Metric Metric { get; }
    /// <summary>τ in use.</summary>
    public double Tau { get; }
    /// <summary>Latent- or code-anchored targets.</summary>
    public NeighborAnchor Anchor { get; }
    /// <summary>k of the truncated targets, or null for the full codebook.</summary>
    public int? TopK { get; }
    /// <summary>Chunking, compute dtype and backend.</summary>
    public FusedOptions Options { get; }
    /// <summary>How τ was calibrated, or null when it was given.</summary>
    public TauCalibrationResult? Calibration { get; init; }

    /// <inheritdoc/>
    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var codes = codebook.to(logits.device);   // no copy when the codebook already lives there (training)
        var o = FusedSnce.Forward(logits, Anchors(codes, targets), codes, Metric, Tau, targets.Tokens, targets.Mask, targets.Weights, TopK, Options.For(targets), Neighbors(codes));
        return MoveOut(o);
    }

    /// <inheritdoc/>
    public LossOutput ForwardLinear(Tensor hidden, Tensor weight, Tensor? bias, TokenTargets targets)
    {
        if (weight.dim() != 2 || weight.shape[0] != codebook.shape[0])
            throw new ArgumentException($"snce: the head's weight must be [K, H] with K = {codebook.shape[0]} (the codebook size), got [{string.Join(", ", weight.shape)}]");
        using var scope = NewDisposeScope();
        var codes = codebook.to(hidden.device);
        var o = FusedSnce.ForwardLinear(hidden, weight, bias, Anchors(codes, targets), codes, Metric, Tau, targets.Tokens, targets.Mask, targets.Weights,
            Options.For(targets), TopK, Neighbors(codes));
        return MoveOut(o);
    }

    /// <summary>z per row [N, D]: the latents (latent-anchored) or the rows' codes (code-anchored; unsupervised rows read code 0).</summary>
    Tensor Anchors(Tensor codes, TokenTargets targets)
    {
        if (Anchor == NeighborAnchor.Latent)
            return targets.Latents ?? throw new ArgumentException("snce: latent-anchored targets need TokenTargets.Latents [N, D], but Latents is null (use anchor 'code' for pre-tokenized data)");
        var ids = targets.Tokens.to_type(ScalarType.Int64);
        if (targets.Mask is { } m) ids = ids.masked_fill(m.logical_not(), 0);
        return codes.index_select(0, ids.to(codes.device));
    }

    static LossOutput MoveOut(LossOutput o) =>
        new(o.Loss.MoveToOuterDisposeScope(), o.HardCe.MoveToOuterDisposeScope(), o.TargetEntropy?.MoveToOuterDisposeScope());

    /// <summary>
    /// The neighbor table for top-k, built once per device: for code anchors (every row is then served from it) unless
    /// TopKSearch says Full or RowStep; for latent anchors only with TopKSearch.Neighbors, as the table certifies a latent
    /// row only when the latent is close to its code relative to the code spacing (measure with
    /// <c>snce-bench loss --anchors near</c>'s from_table first); null otherwise.
    /// </summary>
    CodeNeighbors? Neighbors(Tensor codes)
    {
        if (TopK is not int k || Options.TopKSearch is TopKSearch.Full or TopKSearch.RowStep) return null;
        if (Anchor == NeighborAnchor.Latent && Options.TopKSearch != TopKSearch.Neighbors) return null;
        if (neighbors is not null && neighbors.Ids.device_type == codes.device_type && neighbors.Ids.device_index == codes.device_index) return neighbors;
        neighbors?.Dispose();
        return neighbors = CodeNeighbors.Build(codes, Metric, CodeNeighbors.DefaultSize(k, codes.shape[0]));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        codebook.Dispose();
        neighbors?.Dispose();
    }
}

/// <summary>
/// Cross-entropy as an <see cref="ITokenLoss"/> through <see cref="FusedCrossEntropy.Forward"/>, or with the head folded
/// in through <see cref="FusedCrossEntropy.ForwardLinear"/>.
/// </summary>
public sealed class FusedCrossEntropyLoss(long numCodes, FusedOptions? options = null) : IHiddenStateLoss
{
    /// <inheritdoc/>
    public string Name => LossKind.CrossEntropy.Name();
    /// <summary>K, the number of codes.</summary>
    public long NumCodes { get; } = numCodes >= 1 ? numCodes : throw new ArgumentException($"the codebook size must be ≥ 1, got {numCodes}");
    /// <summary>Chunking, compute dtype and backend.</summary>
    public FusedOptions Options { get; } = options ?? FusedOptions.Default;

    /// <inheritdoc/>
    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        if (logits.dim() != 2 || logits.shape[1] != NumCodes)
            throw new ArgumentException($"ce: logits must be [N, K] with K = {NumCodes} (the codebook size), got [{string.Join(", ", logits.shape)}]");
        return FusedCrossEntropy.Forward(logits, targets.Tokens, targets.Mask, targets.Weights, Options.For(targets));
    }

    /// <inheritdoc/>
    public LossOutput ForwardLinear(Tensor hidden, Tensor weight, Tensor? bias, TokenTargets targets)
    {
        if (weight.dim() != 2 || weight.shape[0] != NumCodes)
            throw new ArgumentException($"ce: the head's weight must be [K, H] with K = {NumCodes} (the codebook size), got [{string.Join(", ", weight.shape)}]");
        return FusedCrossEntropy.ForwardLinear(hidden, weight, bias, targets.Tokens, targets.Mask, targets.Weights, Options.For(targets));
    }
}
