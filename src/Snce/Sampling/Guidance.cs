using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>
/// Classifier-free guidance (Ho &amp; Salimans 2022) on logits: ℓ = ℓ_u + s·(ℓ_c − ℓ_u). Scale 1 is the
/// conditional model, so samplers skip the unconditional pass then. The scale may vary over the decoding (<see cref="CfgSchedule"/>).
/// </summary>
public static class Guidance
{
    /// <summary>The largest scale accepted: far beyond any useful one (1.5–5 is usual); larger ones turn logits into one-hot garbage.</summary>
    public const double MaxScale = 100;

    /// <summary>Throws naming <paramref name="option"/> unless the scale is a finite number in [0, <see cref="MaxScale"/>].</summary>
    public static double CheckScale(double scale, string option = "--cfg") =>
        double.IsFinite(scale) && scale is >= 0 and <= MaxScale ? scale
            : throw new ArgumentException($"{option} must be a number in [0, {MaxScale}] (1 = no guidance; 1.5–5 is usual), got {scale}");

    /// <summary>True when a guidance scale needs the unconditional pass.</summary>
    public static bool NeedsUnconditional(double scale) => scale != 1.0;

    /// <summary>Batches the conditional and null conditions [B, ...] + [B, ...] → [2B, ...] (conditional first).</summary>
    public static Tensor Pair(Tensor condition, Tensor unconditional) => cat([condition, unconditional], 0);

    /// <summary>
    /// The conditions a sampler runs the model on: <see cref="Pair"/> when <paramref name="scale"/> needs the
    /// unconditional pass (which must then be given), else <paramref name="condition"/> alone.
    /// </summary>
    public static (bool Guided, Tensor Batch) Conditions(Tensor condition, Tensor? unconditional, double scale)
    {
        CheckScale(scale, "the CFG scale");                                   // every sampler comes through here: NaN or 1e30 never reaches the logits
        if (!NeedsUnconditional(scale)) return (false, condition);
        if (unconditional is null) throw new ArgumentException($"CFG scale {scale} needs the unconditional (null) condition");
        return (true, Pair(condition, unconditional));
    }

    /// <summary>
    /// Splits logits [2B, ...] of <see cref="Pair"/> and combines them → [B, ...] (fp32). Scale 1 returns the conditional
    /// logits exactly (a step of a <see cref="CfgSchedule.Linear"/> ramp is the conditional model, not u + (c − u) ± rounding).
    /// </summary>
    public static Tensor Combine(Tensor pairedLogits, double scale)
    {
        using var scope = NewDisposeScope();
        var b = pairedLogits.shape[0] / 2;
        var c = pairedLogits.narrow(0, 0, b).to_type(ScalarType.Float32);
        if (!NeedsUnconditional(scale)) return c.contiguous().MoveToOuterDisposeScope();
        var u = pairedLogits.narrow(0, b, b).to_type(ScalarType.Float32);
        return (u + scale * (c - u)).MoveToOuterDisposeScope();
    }
}
