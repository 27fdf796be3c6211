using System.Text.Json.Serialization;

namespace Snce.Sampling;

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
[JsonConverter(typeof(JsonStringEnumConverter<CfgSchedule>))]
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
    /// <summary>The accepted names.</summary>
    public static string Allowed => EnumNames<CfgSchedule>.Allowed;

    /// <summary>The schedule's name (constant, linear).</summary>
    public static string Name(this CfgSchedule schedule) => EnumNames<CfgSchedule>.Name(schedule);

    /// <summary>Name → schedule; throws naming the allowed ones.</summary>
    public static CfgSchedule Parse(string name) => EnumNames<CfgSchedule>.Parse(name, "CFG schedule");

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
