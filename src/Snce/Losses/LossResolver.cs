using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// What a loss needs from the training data before it can be resolved.
/// </summary>
/// <param name="Anchor">The anchor the loss uses (auto resolved against the data), or null when it has none.</param>
/// <param name="AnchorSample">Training positions to sample for calibration (their tokens, and latents when <paramref name="Anchor"/> is latent); 0 = none.</param>
public sealed record LossNeeds(NeighborAnchor? Anchor, int AnchorSample)
{
    /// <summary>
    /// Latent-anchored top-k SNCE on data that stores each position's nearest codes instead of its latent (a
    /// <c>--latents topk</c> shard): batches and the calibration sample carry those neighbours, not latents.
    /// </summary>
    public bool FromLatentNeighbors { get; init; }

    /// <summary>Whether the anchor sample must carry latents.</summary>
    public bool SampleLatents => AnchorSample > 0 && Anchor == NeighborAnchor.Latent && !FromLatentNeighbors;

    /// <summary>Whether the anchor sample must carry the stored latent neighbours.</summary>
    public bool SampleLatentNeighbors => AnchorSample > 0 && FromLatentNeighbors;
}

/// <summary>
/// A sample of training positions: token ids [M] and, for latent anchors, their latents [M, D] or their stored nearest
/// codes (ids and distances [M, k]). Disposing it frees them.
/// </summary>
public sealed record AnchorSample(Tensor Tokens, Tensor? Latents, NearestCodes? LatentNeighbors = null) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        Tokens.Dispose();
        Latents?.Dispose();
        LatentNeighbors?.Dispose();
    }
}

/// <summary>
/// Turns a <see cref="LossSpec"/> into a <see cref="ResolvedLoss"/>, one resolver per <see cref="LossKind"/>: first
/// <see cref="Needs"/> says what to sample from the data, then <see cref="Resolve"/> fixes every number (calibrating
/// τ, matching ε). Runs resolve once, when they start; the checkpoint keeps the result.
/// </summary>
public abstract class LossResolver
{
    /// <summary>Positions label smoothing samples to match ε to SNCE (the match materializes [M, K] targets, so fewer than τ's).</summary>
    public const int EpsilonMatchSample = 4096;

    /// <summary>The resolver of <paramref name="kind"/>.</summary>
    public static LossResolver For(LossKind kind) => kind switch
    {
        LossKind.CrossEntropy => CrossEntropyResolver.Instance,
        LossKind.LabelSmoothing => LabelSmoothingResolver.Instance,
        LossKind.Snce => SnceResolver.Instance,
        LossKind.Stochastic => StochasticResolver.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, $"unknown loss kind; use one of {EnumNames<LossKind>.Allowed}"),
    };

    /// <summary>
    /// What <paramref name="spec"/> needs from data that has (or lacks) per-token latents; auto anchors become latent
    /// when <paramref name="latentsAvailable"/>, else code. <paramref name="calibrationSamples"/> is how many positions τ
    /// is calibrated on. <paramref name="latentNeighborsK"/> &gt; 0: the data stores, instead of latents, each position's
    /// k nearest codes, which latent-anchored top-k SNCE (reference implementation, top-k ≤ k) reads in their place.
    /// </summary>
    public abstract LossNeeds Needs(LossSpec spec, bool latentsAvailable, int calibrationSamples, int latentNeighborsK = 0);

    /// <summary>Fixes every number of <paramref name="spec"/> (validated first) against the codebook, using the sample <see cref="Needs"/> asked for.</summary>
    public abstract ResolvedLoss Resolve(LossSpec spec, LossNeeds needs, Tensor codebook, Metric metric, AnchorSample? sample);

    /// <summary>
    /// The SNCE τ of <paramref name="spec"/>: as given, or calibrated on <paramref name="anchorVectors"/> [M, D]
    /// (latents, or code vectors for code anchors) so that the mean target perplexity is the spec's.
    /// </summary>
    /// <remarks>
    /// With <paramref name="neighborDistances"/> [M, ≥k] (a sample's stored latent neighbours) instead of anchor vectors,
    /// top-k τ is calibrated on their first k distances: exactly what the top-k targets of those latents read.
    /// </remarks>
    public static (double Tau, TauCalibrationResult? Calibration) SnceTau(LossSpec spec, Tensor codebook, Metric metric, Tensor? anchorVectors,
        Tensor? neighborDistances = null)
    {
        if (spec.Tau is { } tau)
        {
            NeighborTargets.CheckTau(tau);
            return (tau, null);
        }
        var perplexity = spec.Perplexity ?? throw new ArgumentException("snce needs --tau X or --perplexity P; neither was given");
        if (spec.TopK is { } k && (k < 1 || k > codebook.shape[0]))
            throw new ArgumentException($"top-k must be in [1, K = {codebook.shape[0]}], got k = {k}");
        if (neighborDistances is not null)
        {
            var topK = spec.TopK ?? throw new ArgumentException("snce: stored latent neighbours give top-k targets only; set top-k");
            if (neighborDistances.dim() != 2 || neighborDistances.shape[1] < topK)
                throw new ArgumentException($"snce: the stored latent neighbours hold {neighborDistances.shape[^1]} codes per position, fewer than top-k = {topK}");
            using var s = NewDisposeScope();
            var onDistances = TauCalibration.CalibrateOnDistances(neighborDistances.narrow(1, 0, topK), perplexity);
            return (onDistances.Tau, onDistances);
        }
        if (anchorVectors is null)
            throw new ArgumentException($"snce: calibrating τ to perplexity {perplexity} needs a sample of anchors (calibrationAnchors): latents [M, D], or for code anchors code vectors [M, D] or token ids [M]");
        using var scope = NewDisposeScope();
        var calibration = TauCalibration.Calibrate(anchorVectors, codebook, metric, perplexity, spec.TopK);
        return (calibration.Tau, calibration);
    }

    /// <summary>The anchor vectors of a sample: its latents for latent anchors, its tokens' code vectors for code anchors.</summary>
    protected static Tensor? Vectors(AnchorSample? sample, NeighborAnchor anchor, Tensor codebook) => sample is null ? null
        : anchor == NeighborAnchor.Latent
            ? sample.Latents ?? throw new ArgumentException("latent-anchored calibration needs the sample's latents [M, D]")
            : codebook.index_select(0, sample.Tokens.to_type(ScalarType.Int64));

    /// <summary>The anchor of a loss that has one: as given, else latent when the data has latents, else code.</summary>
    protected static NeighborAnchor AnchorFor(LossSpec spec, bool latentsAvailable) =>
        spec.Anchor ?? (latentsAvailable ? NeighborAnchor.Latent : NeighborAnchor.Code);
}

sealed class CrossEntropyResolver : LossResolver
{
    public static readonly CrossEntropyResolver Instance = new();

    public override LossNeeds Needs(LossSpec spec, bool latentsAvailable, int calibrationSamples, int latentNeighborsK = 0) => new(null, 0);

    public override ResolvedLoss Resolve(LossSpec spec, LossNeeds needs, Tensor codebook, Metric metric, AnchorSample? sample) =>
        new() { Kind = spec.Validate().Kind, Implementation = spec.Implementation };
}

sealed class SnceResolver : LossResolver
{
    public static readonly SnceResolver Instance = new();

    /// <summary>Latent anchors read stored neighbours where the data has no latents but ≥ top-k nearest codes per position (reference implementation).</summary>
    public override LossNeeds Needs(LossSpec spec, bool latentsAvailable, int calibrationSamples, int latentNeighborsK = 0)
    {
        var fromNeighbors = !latentsAvailable && spec.TopK is { } k && k <= latentNeighborsK && spec.Implementation == LossImplementation.Reference;
        var anchor = AnchorFor(spec, latentsAvailable || fromNeighbors);
        return new(anchor, spec.Perplexity is null ? 0 : calibrationSamples) { FromLatentNeighbors = fromNeighbors && anchor == NeighborAnchor.Latent };
    }

    public override ResolvedLoss Resolve(LossSpec spec, LossNeeds needs, Tensor codebook, Metric metric, AnchorSample? sample)
    {
        spec.Validate();
        using var scope = NewDisposeScope();
        var anchor = needs.Anchor ?? NeighborAnchor.Latent;
        var fromNeighbors = spec.Tau is null && needs.FromLatentNeighbors;
        if (fromNeighbors && sample?.LatentNeighbors is null)
            throw new ArgumentException("snce: calibrating τ on stored latent neighbours needs a sample of them (AnchorSample.LatentNeighbors)");
        var (tau, calibration) = SnceTau(spec, codebook, metric, spec.Tau is null && !fromNeighbors ? Vectors(sample, anchor, codebook) : null,
            fromNeighbors ? sample!.LatentNeighbors!.Distances : null);
        return new()
        {
            Kind = LossKind.Snce, Implementation = spec.Implementation, Anchor = anchor, Tau = tau, TopK = spec.TopK, Calibration = calibration,
        };
    }
}

sealed class LabelSmoothingResolver : LossResolver
{
    public static readonly LabelSmoothingResolver Instance = new();

    public override LossNeeds Needs(LossSpec spec, bool latentsAvailable, int calibrationSamples, int latentNeighborsK = 0) =>
        spec.Perplexity is null ? new(null, 0) : new(AnchorFor(spec, latentsAvailable), EpsilonMatchSample);

    /// <summary>
    /// ε as given; or matched to SNCE calibrated at the spec's perplexity (on the sample, with its anchor and top-k):
    /// the mean off-target mass 1 − q(x|z) over the sampled positions.
    /// </summary>
    public override ResolvedLoss Resolve(LossSpec spec, LossNeeds needs, Tensor codebook, Metric metric, AnchorSample? sample)
    {
        spec.Validate();
        if (spec.Perplexity is null)
            return new() { Kind = LossKind.LabelSmoothing, Implementation = spec.Implementation, Epsilon = spec.Epsilon ?? LossSpec.DefaultEpsilon };
        var anchor = needs.Anchor ?? NeighborAnchor.Latent;
        if (sample is null)
            throw new ArgumentException($"label-smoothing matched to perplexity {spec.Perplexity} needs a sample of training positions (tokens, and latents for latent anchors)");
        using var scope = NewDisposeScope();
        var snceSpec = new LossSpec { Kind = LossKind.Snce, Perplexity = spec.Perplexity, TopK = spec.TopK, Anchor = anchor };
        var (tau, calibration) = SnceTau(snceSpec, codebook, metric, Vectors(sample, anchor, codebook));
        using var snce = new SnceLoss(codebook, metric, tau, anchor, spec.TopK);
        var epsilon = LabelSmoothingLoss.EpsilonMatching(snce, new TokenTargets(sample.Tokens, anchor == NeighborAnchor.Latent ? sample.Latents : null));
        return new() { Kind = LossKind.LabelSmoothing, Implementation = spec.Implementation, Anchor = anchor, Epsilon = epsilon, Calibration = calibration };
    }
}

sealed class StochasticResolver : LossResolver
{
    public static readonly StochasticResolver Instance = new();

    public override LossNeeds Needs(LossSpec spec, bool latentsAvailable, int calibrationSamples, int latentNeighborsK = 0) => new(AnchorFor(spec, latentsAvailable), 0);

    public override ResolvedLoss Resolve(LossSpec spec, LossNeeds needs, Tensor codebook, Metric metric, AnchorSample? sample) => new()
    {
        Kind = spec.Validate().Kind, Implementation = spec.Implementation, Anchor = needs.Anchor ?? NeighborAnchor.Latent,
        Alpha = spec.Alpha ?? LossSpec.DefaultAlpha, Delta = spec.Delta ?? LossSpec.DefaultDelta,
    };
}
