using System.ComponentModel;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Snce.Objectives;

/// <summary>
/// The masking schedule γ(r) of masked discrete diffusion: the fraction of tokens masked at progress
/// r ∈ [0, 1] (r = 0 all masked, r = 1 none). Training draws r ~ U(0, 1) and masks ⌈γ(r)·T⌉ tokens;
/// the parallel decoder keeps ⌊γ((s+1)/S)·T⌋ tokens masked after step s of S. One definition for both.
/// </summary>
/// <remarks>
/// cosine: γ(r) = cos(πr/2) (MaskGIT, Chang et al. 2022). linear: γ(r) = 1 − r (MDLM's linear schedule, t = 1 − r).
/// The ELBO weight of a masked token (MDLM, Sahoo et al. 2024: −α'_t/(1−α_t) with α_t = 1 − γ(1−t)) is
/// w(r) = −γ'(r)/γ(r): 1/t for linear, (π/2)·tan(πr/2) for cosine.
/// </remarks>
[JsonConverter(typeof(JsonStringEnumConverter<MaskScheduleKind>)), Description("mask schedule")]
public enum MaskScheduleKind
{
    /// <summary>γ(r) = cos(πr/2) (MaskGIT).</summary>
    [JsonStringEnumMemberName("cosine")] Cosine,
    /// <summary>γ(r) = 1 − r (MDLM linear).</summary>
    [JsonStringEnumMemberName("linear")] Linear,
}

/// <summary>Evaluates a <see cref="MaskScheduleKind"/> on the host (sampler) and on tensors (training).</summary>
public static class MaskSchedule
{
    /// <summary>γ(r) for a scalar progress r ∈ [0, 1].</summary>
    public static double MaskRatio(this MaskScheduleKind kind, double r) => kind switch
    {
        MaskScheduleKind.Cosine => Math.Cos(Math.PI / 2 * r),
        MaskScheduleKind.Linear => 1 - r,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>
    /// The inverse of γ: the progress r ∈ [0, 1] at which a share <paramref name="maskRatio"/> of the tokens is masked
    /// (cosine: r = (2/π)·acos(f); linear: r = 1 − f). Editing starts the parallel decoder there, so the schedule continues
    /// from the masked fraction (MaskGIT/aMUSEd inpainting).
    /// </summary>
    public static double ProgressAt(this MaskScheduleKind kind, double maskRatio)
    {
        if (!(maskRatio >= 0 && maskRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(maskRatio), maskRatio, "a mask ratio is in [0, 1]");
        return kind switch
        {
            MaskScheduleKind.Cosine => Math.Acos(maskRatio) * 2 / Math.PI,
            MaskScheduleKind.Linear => 1 - maskRatio,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
    }

    /// <summary>γ(r) elementwise (fp32).</summary>
    public static Tensor MaskRatio(this MaskScheduleKind kind, Tensor r) => kind switch
    {
        MaskScheduleKind.Cosine => (r * (Math.PI / 2)).cos_(),
        MaskScheduleKind.Linear => 1 - r,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The ELBO weight w(r) = −γ'(r)/γ(r) elementwise.</summary>
    public static Tensor ElboWeight(this MaskScheduleKind kind, Tensor r) => kind switch
    {
        MaskScheduleKind.Cosine => (r * (Math.PI / 2)).tan_().mul_(Math.PI / 2),
        MaskScheduleKind.Linear => (1 - r).reciprocal_(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}
