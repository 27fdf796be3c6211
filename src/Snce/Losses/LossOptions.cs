namespace Snce.Losses;

/// <summary>
/// Which token loss to build and how (the command line's --loss, --tau, --perplexity, --top-k, ...).
/// LossFactory validates it and builds the <see cref="ITokenLoss"/>.
/// </summary>
public sealed record LossOptions
{
    /// <summary>The accepted loss names.</summary>
    public const string AllowedNames = "ce, label-smoothing, snce, stochastic";

    /// <summary>ce | label-smoothing | snce | stochastic.</summary>
    public string Name { get; init; } = "ce";
    /// <summary>SNCE temperature τ (&gt; 0), or null to calibrate it from <see cref="Perplexity"/>.</summary>
    public double? Tau { get; init; }
    /// <summary>Target mean perplexity 2^H(q) for calibrating a single global τ (&gt; 1).</summary>
    public double? Perplexity { get; init; }
    /// <summary>Truncate SNCE targets to the k nearest codes (renormalized); null = full codebook.</summary>
    public int? TopK { get; init; }
    /// <summary>Label-smoothing mass ε moved off the true token, uniformly over the other codes.</summary>
    public double Epsilon { get; init; } = 0.1;
    /// <summary>Stochastic quantization: probability α of replacing the nearest code by a neighbor.</summary>
    public double Alpha { get; init; } = 0.1;
    /// <summary>Stochastic quantization: the neighbor is drawn uniformly from the top-δ nearest codes (δ ≥ 2, including the nearest).</summary>
    public int Delta { get; init; } = 8;
    /// <summary>latent (z = the encoder latent) or code (z = the ground-truth code vector).</summary>
    public string Anchor { get; init; } = "latent";
    /// <summary>auto | reference | fused.</summary>
    public string Implementation { get; init; } = "auto";
}
