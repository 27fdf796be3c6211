using System.ComponentModel;
using System.Text.Json.Serialization;

namespace Snce.Objectives;

/// <summary>How masked positions are weighted in the masked objective's loss.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<MaskWeighting>)), Description("mask weighting")]
public enum MaskWeighting
{
    /// <summary>Every masked token counts once: mean loss over masked tokens (MaskGIT).</summary>
    [JsonStringEnumMemberName("none")] None,
    /// <summary>MDLM's ELBO weight w(r) = −γ'(r)/γ(r) per sequence (1/t for the linear schedule), normalized per token.</summary>
    [JsonStringEnumMemberName("elbo")] Elbo,
}

/// <summary>Options of both objectives.</summary>
/// <param name="CfgDropout">Probability of replacing a condition by the null condition in training.</param>
/// <param name="Schedule">Masked objective: masking schedule γ.</param>
/// <param name="Weighting">Masked objective: per-token weighting.</param>
/// <param name="MinProgress">Masked objective: r is drawn from U(0, 1 − this), keeping ≥ a few tokens masked and the ELBO weight finite.</param>
public sealed record ObjectiveOptions(
    [property: JsonPropertyName("cfg_dropout")] double CfgDropout = 0.1,
    [property: JsonPropertyName("schedule")] MaskScheduleKind Schedule = MaskScheduleKind.Cosine,
    [property: JsonPropertyName("weighting")] MaskWeighting Weighting = MaskWeighting.None,
    [property: JsonPropertyName("min_progress")] double MinProgress = 1e-3)
{
    /// <summary>none | elbo (case-insensitive; "mdlm" also reads as elbo) → weighting; throws naming the allowed values.</summary>
    public static MaskWeighting ParseWeighting(string name) =>
        string.Equals(name.Trim(), "mdlm", StringComparison.OrdinalIgnoreCase)
            ? MaskWeighting.Elbo
            : EnumNames<MaskWeighting>.Parse(name);

    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (!(CfgDropout >= 0 && CfgDropout < 1)) throw new ArgumentException($"CFG dropout must be in [0, 1) (got {CfgDropout})");
        if (!(MinProgress >= 0 && MinProgress < 1)) throw new ArgumentException($"min progress must be in [0, 1) (got {MinProgress})");
    }
}
