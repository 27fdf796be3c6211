using System.Text.Json.Serialization;

namespace Snce.Losses;

/// <summary>
/// The token loss a user asks for (the command line's --loss, --tau, --perplexity, --top-k, --epsilon, --alpha,
/// --delta, --anchor, --loss-implementation): a kind and only the options it reads (null = not given). A
/// <see cref="LossResolver"/> turns it into a fully numeric <see cref="ResolvedLoss"/>; <see cref="Validate"/>
/// is the one check of which options go together, shared by every entry point.
/// </summary>
public sealed record LossSpec
{
    /// <summary>Label smoothing's ε when neither it nor a perplexity is given.</summary>
    public const double DefaultEpsilon = 0.1;
    /// <summary>Stochastic quantization's α when not given.</summary>
    public const double DefaultAlpha = 0.1;
    /// <summary>Stochastic quantization's δ when not given.</summary>
    public const int DefaultDelta = 8;

    /// <summary>Which loss.</summary>
    public LossKind Kind { get; init; } = LossKind.CrossEntropy;
    /// <summary>SNCE temperature τ (&gt; 0); or give <see cref="Perplexity"/>.</summary>
    public double? Tau { get; init; }
    /// <summary>
    /// SNCE: the mean target perplexity 2^H(q) to calibrate one global τ to (&gt; 1). Label smoothing: set ε to
    /// SNCE's mean off-target mass at this perplexity.
    /// </summary>
    public double? Perplexity { get; init; }
    /// <summary>SNCE (and label smoothing's matching): truncate the targets to the k nearest codes; null = full codebook.</summary>
    public int? TopK { get; init; }
    /// <summary>Label smoothing: the mass ε moved off the true token; null = <see cref="DefaultEpsilon"/> (or matched to <see cref="Perplexity"/>).</summary>
    public double? Epsilon { get; init; }
    /// <summary>Stochastic quantization: probability α of replacing the nearest code; null = <see cref="DefaultAlpha"/>.</summary>
    public double? Alpha { get; init; }
    /// <summary>Stochastic quantization: draw from the top-δ nearest codes (δ ≥ 2, the nearest included); null = <see cref="DefaultDelta"/>.</summary>
    public int? Delta { get; init; }
    /// <summary>Neighbors around the encoder latent or the ground-truth code; null = auto (latent when the data has latents).</summary>
    public NeighborAnchor? Anchor { get; init; }
    /// <summary>Reference or fused (ce and snce only).</summary>
    public LossImplementation Implementation { get; init; } = LossImplementation.Reference;

    /// <summary>
    /// Checks which options go together, before any data is read: an option the chosen loss does not read is an
    /// error (not silently ignored), as are τ and a perplexity together (or neither, for SNCE) and a fused
    /// implementation of a loss that has none. Value ranges that depend on the codebook (k ≤ K, perplexity &lt; K)
    /// are checked when the loss is resolved. Returns this spec.
    /// </summary>
    public LossSpec Validate()
    {
        var name = Kind.Name();
        var given = Given().ToList();
        var unread = given.Where(o => !Reads(o.Name)).ToList();
        if (unread.Count > 0)
            throw new ArgumentException(
                $"--loss {name} does not read {(unread.Count == 1 ? "this option" : "these options")}; drop " +
                string.Join("; ", unread.Select(o => $"--{o.Name} {o.Value} (options that apply to {ReadersOf(o.Name)} only)")));
        if (Implementation == LossImplementation.Fused && Kind is not (LossKind.CrossEntropy or LossKind.Snce))
            throw new NotSupportedException(
                $"there is no fused {name}: the fused implementation covers ce and snce; use implementation 'reference' for {name}");
        switch (Kind)
        {
            case LossKind.Snce when Tau is not null && Perplexity is not null:
                throw new ArgumentException($"snce: give either τ (--tau {Tau}) or a target perplexity (--perplexity {Perplexity}) to calibrate τ from, not both");
            case LossKind.Snce when Tau is null && Perplexity is null:
                throw new ArgumentException("snce needs --tau X or --perplexity P (τ > 0, or a target perplexity > 1 to calibrate τ from); neither was given");
            case LossKind.LabelSmoothing when Epsilon is not null && Perplexity is not null:
                throw new ArgumentException($"label-smoothing: give either --epsilon ({Epsilon}) or --perplexity ({Perplexity}) to match ε to SNCE's off-target mass, not both");
            case LossKind.LabelSmoothing when Perplexity is null && (TopK is not null || Anchor is not null):
                throw new ArgumentException("label-smoothing reads --top-k and --anchor only with --perplexity (they shape the SNCE targets its ε is matched to)");
        }
        return this;
    }

    /// <summary>Whether this spec's loss reads the option named <paramref name="option"/> (tau, perplexity, top-k, epsilon, alpha, delta, anchor).</summary>
    bool Reads(string option) => option switch
    {
        "tau" => Kind == LossKind.Snce,
        "perplexity" or "top-k" or "anchor" => Kind is LossKind.Snce or LossKind.LabelSmoothing || (option == "anchor" && Kind == LossKind.Stochastic),
        "epsilon" => Kind == LossKind.LabelSmoothing,
        "alpha" or "delta" => Kind == LossKind.Stochastic,
        _ => throw new ArgumentOutOfRangeException(nameof(option), option, null),
    };

    static string ReadersOf(string option) => string.Join(", ",
        Enum.GetValues<LossKind>().Where(k => new LossSpec { Kind = k }.Reads(option)).Select(k => $"--loss {k.Name()}"));

    IEnumerable<(string Name, object Value)> Given()
    {
        if (Tau is { } tau) yield return ("tau", tau);
        if (Perplexity is { } p) yield return ("perplexity", p);
        if (TopK is { } k) yield return ("top-k", k);
        if (Epsilon is { } e) yield return ("epsilon", e);
        if (Alpha is { } a) yield return ("alpha", a);
        if (Delta is { } d) yield return ("delta", d);
        if (Anchor is { } anchor) yield return ("anchor", anchor.Name());
    }
}
