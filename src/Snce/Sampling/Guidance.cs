using System.ComponentModel;
using System.Text.Json.Serialization;
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

/// <summary>
/// How the classifier-free guidance scale varies over one decoding: the scale s_i the sampler applies at step i of n.
/// For the AR sampler a step is a token position (n = T tokens in raster order; inpainting applies the scale of each
/// editable token's position); for the masked parallel decoder a step is a decoding step (n = S steps, generation and
/// inpainting alike).
/// </summary>
/// <remarks>
/// constant: s_i = s. linear: s_i = 1 + (s − 1)·i/(n − 1), from the conditional model (s = 1) at the first step to s at the
/// last (n = 1: s), the low-guidance-first ramp of MUSE/aMUSEd-style samplers (MAR's linear schedule ramps on the revealed
/// fraction instead). Early steps fix the image's layout, where strong guidance costs diversity; late ones its detail.
/// A scale of exactly 1 is the conditional model: the masked decoder skips the unconditional pass at that step; the AR
/// sampler still feeds the unconditional sequence (its KV cache must see every token) but uses the conditional logits alone.
/// </remarks>
[JsonConverter(typeof(JsonStringEnumConverter<CfgSchedule>)), Description("CFG schedule")]
public enum CfgSchedule
{
    /// <summary>s_i = s at every step.</summary>
    [JsonStringEnumMemberName("constant")] Constant,
    /// <summary>s_i = 1 + (s − 1)·i/(n − 1): 1 at the first step, s at the last.</summary>
    [JsonStringEnumMemberName("linear")] Linear,
}

/// <summary>Evaluates a <see cref="CfgSchedule"/>.</summary>
public static class CfgSchedules
{
    /// <summary>The guidance scale at step <paramref name="step"/> (0-based) of <paramref name="steps"/> for the final scale <paramref name="scale"/>.</summary>
    public static double ScaleAt(this CfgSchedule schedule, double scale, int step, int steps)
    {
        if (steps < 1 || step < 0 || step >= steps) throw new ArgumentOutOfRangeException(nameof(step), $"step {step} of {steps}: need 0 ≤ step < steps");
        return schedule switch
        {
            CfgSchedule.Constant => scale,
            CfgSchedule.Linear => step == steps - 1 ? scale : 1 + (scale - 1) * step / (steps - 1),      // the last step is s exactly, not s ± 1 ulp
            _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, null),
        };
    }
}
