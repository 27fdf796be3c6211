using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// Builds the <see cref="ITokenLoss"/> a <see cref="LossSpec"/> names in one call (validate, resolve, create), for
/// callers that hold the anchors themselves; training runs resolve through <see cref="LossResolver"/> and keep the
/// <see cref="ResolvedLoss"/>. Errors name the bad value and the allowed ones.
/// </summary>
public static class LossFactory
{
    /// <summary>
    /// Creates the loss. <paramref name="codebook"/> [K, D] and <paramref name="metric"/> are the tokenizer's; an auto
    /// anchor means latent. <paramref name="calibrationAnchors"/> is needed to calibrate τ from <see cref="LossSpec.Perplexity"/>:
    /// latent vectors [M, D] for latent-anchored SNCE; for code-anchored SNCE either code vectors [M, D] or token
    /// ids [M] (calibrated over those tokens' codes, so frequent codes weigh more). Label smoothing matched to a perplexity
    /// needs a sample of positions: resolve it with <see cref="LossResolver"/>.
    /// </summary>
    public static ITokenLoss Create(LossSpec spec, Tensor codebook, Metric metric, Tensor? calibrationAnchors = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (codebook.dim() != 2 || codebook.shape[0] < 1 || !codebook.is_floating_point())
            throw new ArgumentException($"codebook must be a float [K, D] tensor with K ≥ 1, got {LossInputs.Shape(codebook)} {codebook.dtype}");
        spec.Validate();
        var anchor = spec.Anchor ?? NeighborAnchor.Latent;
        ResolvedLoss resolved;
        if (spec.Kind == LossKind.Snce)
        {
            using var scope = NewDisposeScope();
            var vectors = spec.Tau is null && calibrationAnchors is not null ? AnchorVectors(calibrationAnchors, codebook, anchor) : null;
            var (tau, calibration) = LossResolver.SnceTau(spec, codebook, metric, vectors);
            resolved = new() { Kind = LossKind.Snce, Implementation = spec.Implementation, Anchor = anchor, Tau = tau, TopK = spec.TopK, Calibration = calibration };
        }
        else
        {
            var resolver = LossResolver.For(spec.Kind);
            resolved = resolver.Resolve(spec, resolver.Needs(spec with { Anchor = anchor }, latentsAvailable: true, calibrationSamples: 0), codebook, metric, sample: null);
        }
        return resolved.Create(codebook, metric);
    }

    static Tensor AnchorVectors(Tensor a, Tensor codebook, NeighborAnchor anchor)
    {
        if (a.dim() == 2 && a.is_floating_point()) return a;
        var isIds = a.dim() == 1 && !a.is_floating_point() && a.dtype != ScalarType.Bool;
        if (isIds && anchor == NeighborAnchor.Code)
        {
            var ids = a.to_type(ScalarType.Int64);
            if (ids.numel() == 0 || ids.min().item<long>() < 0 || ids.max().item<long>() >= codebook.shape[0])
                throw new ArgumentException($"calibration token ids must be non-empty and in [0, {codebook.shape[0]})");
            return codebook.index_select(0, ids);
        }
        throw new ArgumentException(
            $"calibration anchors must be vectors [M, D] ({(anchor == NeighborAnchor.Code ? "or token ids [M] for code anchors" : "latents, for latent anchors")}), got {LossInputs.Shape(a)} {a.dtype}");
    }
}
