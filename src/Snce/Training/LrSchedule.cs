using System.Text.Json.Serialization;

namespace Snce.Training;

/// <summary>
/// Linear warmup then cosine decay: for the optimizer step s = 0, 1, ...
/// lr(s) = base·(s+1)/W for s &lt; W; then min + (base − min)·½(1 + cos(π·(s − W)/(S − W))), min = base·ratio;
/// after S steps it stays at min.
/// </summary>
/// <param name="BaseLr">Peak learning rate.</param>
/// <param name="WarmupSteps">W.</param>
/// <param name="TotalSteps">S, where the cosine reaches its minimum.</param>
/// <param name="MinLrRatio">min / base.</param>
public sealed record LrSchedule(
    [property: JsonPropertyName("base_lr")] double BaseLr,
    [property: JsonPropertyName("warmup_steps")] long WarmupSteps,
    [property: JsonPropertyName("total_steps")] long TotalSteps,
    [property: JsonPropertyName("min_lr_ratio")] double MinLrRatio = 0.1)
{
    /// <summary>The learning rate of optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (step < WarmupSteps) return BaseLr * (step + 1) / WarmupSteps;
        var min = BaseLr * MinLrRatio;
        var span = Math.Max(1, TotalSteps - WarmupSteps);
        var progress = Math.Min(1.0, (double)(step - WarmupSteps) / span);
        return min + (BaseLr - min) * CosineFactor(Math.PI * progress);
    }

    /// <summary>
    /// ½(1 + cos x), the cosine decay's factor: 1 at x = 0, 0 at x = π. Every LR schedule here is built on it
    /// (<see cref="At"/>, <see cref="CosineFromStepOne"/>, the tokenizer's <c>TokenizerTrainOptions.LearningRateAt</c>).
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
