using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// A loss with every number fixed: what a <see cref="LossResolver"/> makes of a <see cref="LossSpec"/> (τ calibrated,
/// ε matched, defaults filled in, the anchor chosen). The generator checkpoint records it once; a resumed run builds
/// its loss from it and never calibrates again. Options the kind does not read are null (and left out of the JSON).
/// </summary>
public sealed record ResolvedLoss
{
    /// <summary>Which loss.</summary>
    [JsonPropertyName("kind")] public LossKind Kind { get; init; }
    /// <summary>Reference or fused.</summary>
    [JsonPropertyName("implementation")] public LossImplementation Implementation { get; init; }
    /// <summary>
    /// snce and stochastic: where the neighbors are anchored; label smoothing matched to a perplexity: the anchor of
    /// the SNCE targets ε was matched to. Null for ce and plain label smoothing.
    /// </summary>
    [JsonPropertyName("anchor"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public NeighborAnchor? Anchor { get; init; }
    /// <summary>snce: the temperature τ in use (given, or calibrated: see <see cref="Calibration"/>).</summary>
    [JsonPropertyName("tau"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Tau { get; init; }
    /// <summary>snce: k of the truncated targets; null = the full codebook.</summary>
    [JsonPropertyName("top_k"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? TopK { get; init; }
    /// <summary>label-smoothing: ε (given, or matched to SNCE at the calibration's perplexity).</summary>
    [JsonPropertyName("epsilon"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Epsilon { get; init; }
    /// <summary>stochastic: replacement probability α.</summary>
    [JsonPropertyName("alpha"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Alpha { get; init; }
    /// <summary>stochastic: neighbors drawn from the top-δ nearest codes.</summary>
    [JsonPropertyName("delta"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Delta { get; init; }
    /// <summary>
    /// The τ calibration that fixed the numbers (target and reached perplexity, anchors): snce's τ, or for label
    /// smoothing the SNCE targets its ε matches. Null when τ or ε was given.
    /// </summary>
    [JsonPropertyName("calibration"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public TauCalibrationResult? Calibration { get; init; }

    /// <summary>Whether training batches must carry per-token latents (latent-anchored snce or stochastic).</summary>
    [JsonIgnore] public bool NeedsLatents => Kind is LossKind.Snce or LossKind.Stochastic && Anchor == NeighborAnchor.Latent;

    /// <summary>
    /// Builds the loss on <paramref name="codebook"/> [K, D] with the tokenizer's <paramref name="metric"/>.
    /// <paramref name="codeNeighbors"/> optionally gives code-anchored top-k SNCE a precomputed neighbor table [K, ≥k]
    /// (a token shard's) instead of building one.
    /// </summary>
    public ITokenLoss Create(Tensor codebook, Metric metric, NearestCodes? codeNeighbors = null)
    {
        var numCodes = codebook.shape[0];
        var fused = Implementation == LossImplementation.Fused;
        return Kind switch
        {
            LossKind.CrossEntropy => fused ? new Fused.FusedCrossEntropyLoss(numCodes) : new CrossEntropyLoss(numCodes),
            LossKind.LabelSmoothing => new LabelSmoothingLoss(numCodes, Required(Epsilon, "epsilon")),
            LossKind.Snce => fused
                ? new Fused.FusedSnceLoss(codebook, metric, Required(Tau, "tau"), Required(Anchor, "anchor"), TopK) { Calibration = Calibration }
                : new SnceLoss(codebook, metric, Required(Tau, "tau"), Required(Anchor, "anchor"), TopK, codeNeighbors) { Calibration = Calibration },
            LossKind.Stochastic => new StochasticQuantizationLoss(codebook, metric, Required(Alpha, "alpha"), Required(Delta, "delta"), Required(Anchor, "anchor")),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, $"unknown loss kind; use one of {EnumNames<LossKind>.Allowed}"),
        };
    }

    T Required<T>(T? value, string option) where T : struct =>
        value ?? throw new ArgumentException($"resolved {Kind.Name()} loss lacks its {option}; resolve the LossSpec with LossResolver.For({Kind})");
}
