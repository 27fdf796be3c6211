using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// Builds the <see cref="ITokenLoss"/> that <see cref="LossOptions"/> names, validating every option it uses
/// at construction (errors name the bad value and the allowed ones). Options a loss does not use are ignored.
/// </summary>
public static class LossFactory
{
    /// <summary>The accepted anchors.</summary>
    public const string AllowedAnchors = "latent, code";
    /// <summary>The accepted implementations.</summary>
    public const string AllowedImplementations = "auto, reference, fused";

    /// <summary>
    /// Creates the loss. <paramref name="codebook"/> [K, D] and <paramref name="metric"/> are the tokenizer's.
    /// <paramref name="calibrationAnchors"/> is needed to calibrate τ from <see cref="LossOptions.Perplexity"/>:
    /// latent vectors [M, D] for latent-anchored SNCE; for code-anchored SNCE either code vectors [M, D] or token
    /// ids [M] (calibrated over those tokens' codes, so frequent codes weigh more). <paramref name="generator"/>
    /// is required by the stochastic loss, its only source of randomness.
    /// </summary>
    public static ITokenLoss Create(LossOptions options, Tensor codebook, Metric metric, Tensor? calibrationAnchors = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (codebook.dim() != 2 || codebook.shape[0] < 1 || !codebook.is_floating_point())
            throw new ArgumentException($"codebook must be a float [K, D] tensor with K ≥ 1, got {LossInputs.Shape(codebook)} {codebook.dtype}");
        var numCodes = codebook.shape[0];
        var anchor = ParseAnchor(options.Anchor);
        var fused = IsFused(options);
        var name = options.Name.ToLowerInvariant();
        return name switch
        {
            "ce" => fused ? new Fused.FusedCrossEntropyLoss(numCodes) : new CrossEntropyLoss(numCodes),
            "label-smoothing" => new LabelSmoothingLoss(numCodes, options.Epsilon),
            "snce" => CreateSnce(options, codebook, metric, anchor, calibrationAnchors, fused),
            "stochastic" => new StochasticQuantizationLoss(codebook, metric, options.Alpha, options.Delta, anchor,
                generator ?? throw new ArgumentException("the stochastic loss draws random neighbors: pass a torch.Generator (its only source of randomness)")),
            _ => throw new ArgumentException($"unknown loss '{options.Name}'; use one of {LossOptions.AllowedNames}"),
        };
    }

    /// <summary>
    /// Checks <see cref="LossOptions.Implementation"/> against the loss (a fused implementation exists for ce and snce
    /// only) and returns whether it is the fused one; callers that build the loss later use it to fail early.
    /// </summary>
    public static bool IsFused(LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var implementation = options.Implementation.ToLowerInvariant();
        if (implementation is not ("auto" or "reference" or "fused"))
            throw new ArgumentException($"unknown loss implementation '{options.Implementation}'; use one of {AllowedImplementations}");
        var name = options.Name.ToLowerInvariant();
        var fused = implementation == "fused";
        if (fused && name is ("label-smoothing" or "stochastic"))
            throw new NotSupportedException(
                $"there is no fused {name}: the fused implementation covers ce and snce; use implementation 'reference' (or 'auto') for {name}");
        return fused;
    }

    /// <summary>Parses latent|code.</summary>
    public static NeighborAnchor ParseAnchor(string anchor) => anchor.ToLowerInvariant() switch
    {
        "latent" => NeighborAnchor.Latent,
        "code" => NeighborAnchor.Code,
        _ => throw new ArgumentException($"unknown anchor '{anchor}'; use one of {AllowedAnchors}"),
    };

    static ITokenLoss CreateSnce(LossOptions o, Tensor codebook, Metric metric, NeighborAnchor anchor, Tensor? calibrationAnchors, bool fused)
    {
        var (tau, calibration) = SnceTau(o, codebook, metric, anchor, calibrationAnchors);
        return fused
            ? new Fused.FusedSnceLoss(codebook, metric, tau, anchor, o.TopK) { Calibration = calibration }
            : new SnceLoss(codebook, metric, tau, anchor, o.TopK) { Calibration = calibration };
    }

    /// <summary>τ as given, or calibrated to the target perplexity (with the calibration's report).</summary>
    static (double Tau, TauCalibrationResult? Calibration) SnceTau(LossOptions o, Tensor codebook, Metric metric, NeighborAnchor anchor, Tensor? calibrationAnchors)
    {
        var numCodes = codebook.shape[0];
        if (o.TopK is { } k && (k < 1 || k > numCodes))
            throw new ArgumentException($"top-k must be in [1, K = {numCodes}], got k = {k}");
        switch (o.Tau, o.Perplexity)
        {
            case (not null, not null):
                throw new ArgumentException($"snce: give either τ (tau = {o.Tau}) or a target perplexity (= {o.Perplexity}) to calibrate τ from, not both");
            case (null, null):
                throw new ArgumentException("snce: needs τ (tau > 0) or a target perplexity (> 1) to calibrate τ from; neither was given");
            case ({ } tau, null):
                NeighborTargets.CheckTau(tau);
                return (tau, null);
        }
        var perplexity = o.Perplexity!.Value;
        if (calibrationAnchors is null)
            throw new ArgumentException($"snce: calibrating τ to perplexity {perplexity} needs a sample of anchors (calibrationAnchors): latents [M, D], or for code anchors code vectors [M, D] or token ids [M]");
        using var scope = NewDisposeScope();
        var anchors = AnchorVectors(calibrationAnchors, codebook, anchor);
        var calibration = TauCalibration.Calibrate(anchors, codebook, metric, perplexity, o.TopK);
        return (calibration.Tau, calibration);
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
