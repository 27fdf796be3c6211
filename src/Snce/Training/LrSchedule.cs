using System.Text.Json.Serialization;

namespace Snce.Training;

/// <summary>
/// Where the cosine decay of an <see cref="LrSchedule"/> starts and how it mixes the peak and the floor. The two differ
/// by one step in where the decay starts and in the last bit of the mix, and are both kept so that runs trained before
/// stay bit-identical: the tokenizer's 2,000 default steps under <see cref="PeakTwice"/> would change 1,900 learning
/// rates (every decayed one), and <see cref="PeakOnce"/> with the generator's rounding 616 of them, each by an ulp or two.
/// </summary>
public enum LrDecayConvention
{
    /// <summary>
    /// The generator trainer's: the cosine starts at step W, so the peak is the rate of steps W − 1 and W and the floor is
    /// reached at step S; lr = min + (base − min)·f, min = base·ratio.
    /// </summary>
    PeakTwice,
    /// <summary>
    /// The tokenizer's: the cosine starts one step after the peak (step W − 1) and reaches the floor at step S − 1, the
    /// last step of an S-step run; lr = base·(ratio + (1 − ratio)·f).
    /// </summary>
    PeakOnce,
}

/// <summary>
/// Linear warmup then cosine decay, every trainer's learning rate: for the optimizer step s = 0, 1, ...
/// lr(s) = base·(s+1)/W for s &lt; W; then, with f = ½(1 + cos(π·min(1, (s − W + d)/(S − W)))) and d = 0 for
/// <see cref="LrDecayConvention.PeakTwice"/>, 1 for <see cref="LrDecayConvention.PeakOnce"/>, the mix of base and
/// min = base·ratio that the <paramref name="Convention"/> names; after the decay it stays at min.
/// </summary>
/// <param name="BaseLr">Peak learning rate.</param>
/// <param name="WarmupSteps">W.</param>
/// <param name="TotalSteps">S, where the cosine reaches its minimum.</param>
/// <param name="MinLrRatio">min / base.</param>
/// <param name="Convention">Where the decay starts and how it rounds (the generator trainer's by default; the tokenizer's is <see cref="LrDecayConvention.PeakOnce"/>).</param>
public sealed record LrSchedule(
    [property: JsonPropertyName("base_lr")] double BaseLr,
    [property: JsonPropertyName("warmup_steps")] long WarmupSteps,
    [property: JsonPropertyName("total_steps")] long TotalSteps,
    [property: JsonPropertyName("min_lr_ratio")] double MinLrRatio = 0.1,
    [property: JsonIgnore] LrDecayConvention Convention = LrDecayConvention.PeakTwice)
{
    /// <summary>The learning rate of optimizer step <paramref name="step"/> (0-based; −1, before the first step, gives 0).</summary>
    public double At(long step)
    {
        if (step < WarmupSteps) return BaseLr * (step + 1) / Math.Max(1, WarmupSteps);
        var span = Math.Max(1, TotalSteps - WarmupSteps);
        var peakOnce = Convention switch
        {
            LrDecayConvention.PeakTwice => false,
            LrDecayConvention.PeakOnce => true,
            _ => throw new ArgumentException($"unknown LR decay convention '{Convention}'; use PeakTwice or PeakOnce"),
        };
        var progress = Math.Min(1.0, (double)(step + (peakOnce ? 1 : 0) - WarmupSteps) / span);
        var f = CosineFactor(Math.PI * progress);
        if (peakOnce) return BaseLr * (MinLrRatio + (1 - MinLrRatio) * f);
        var min = BaseLr * MinLrRatio;
        return min + (BaseLr - min) * f;
    }

    /// <summary>
    /// ½(1 + cos x), the cosine decay's factor: 1 at x = 0, 0 at x = π. Every LR schedule here is built on it
    /// (<see cref="At"/> in both conventions, <see cref="CosineFromStepOne"/>).
    /// </summary>
    public static double CosineFactor(double radians) => 0.5 * (1 + Math.Cos(radians));

    /// <summary>
    /// Cosine decay from <paramref name="baseLr"/> towards 0 with no warmup, for a 1-based step in [1, steps]:
    /// base·½(1 + cos(π·(step − 1)/steps)); the evaluators' classifier and text tower train on it.
    /// Kept apart from <see cref="At"/> (whose W = 0, min = 0 form agrees only to the last bit or two, because it
    /// rounds π·(s/S) where this rounds (π·s)/S) so that evaluators trained before and after stay bit-identical.
    /// </summary>
    public static double CosineFromStepOne(double baseLr, long step, long steps) => baseLr * CosineFactor(Math.PI * (step - 1) / steps);

    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (!(BaseLr > 0)) throw new ArgumentException($"learning rate must be > 0 (got {BaseLr})");
        if (WarmupSteps < 0) throw new ArgumentException($"warmup steps must be ≥ 0 (got {WarmupSteps})");
        if (!(MinLrRatio >= 0 && MinLrRatio <= 1)) throw new ArgumentException($"min LR ratio must be in [0, 1] (got {MinLrRatio})");
    }
}
