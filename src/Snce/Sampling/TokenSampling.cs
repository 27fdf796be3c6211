using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>
/// How one categorical draw is made from logits: temperature, top-k and nucleus (top-p) filtering.
/// Temperature 0 means greedy (argmax).
/// </summary>
/// <param name="Temperature">Logits are divided by it; 0 = argmax.</param>
/// <param name="TopK">Keep the k most likely tokens; 0 = all.</param>
/// <param name="TopP">Keep the smallest set whose probability reaches p; 1 = all.</param>
public sealed record TokenSamplingOptions(double Temperature = 1.0, int TopK = 0, double TopP = 1.0)
{
    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be ≥ 0 (got {Temperature})");
        if (TopK < 0) throw new ArgumentException($"top-k must be ≥ 0 (got {TopK}; 0 = no top-k)");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1] (got {TopP})");
    }
}

/// <summary>Logit filters and the categorical draw, shared by the AR and masked samplers.</summary>
public static class TokenSampling
{
    /// <summary>
    /// Applies temperature, top-k and top-p to logits [N, K] (fp32 result; removed tokens get −∞).
    /// With temperature 0 only the temperature step is skipped (the draw is then an argmax).
    /// </summary>
    public static Tensor Filter(Tensor logits, TokenSamplingOptions o)
    {
        using var scope = NewDisposeScope();
        var x = logits.to_type(ScalarType.Float32);
        if (o.Temperature > 0 && o.Temperature != 1) x = x / o.Temperature;
        var k = x.shape[^1];
        if (o.TopK > 0 && o.TopK < k)
        {
            var kth = x.topk(o.TopK, dim: -1).values.narrow(-1, o.TopK - 1, 1);              // [N, 1]
            x = x.masked_fill(x < kth, double.NegativeInfinity);
        }
        if (o.TopP < 1)
        {
            var (sorted, order) = x.sort(dim: -1, descending: true);
            var probs = sorted.softmax(-1);
            var before = probs.cumsum(-1) - probs;                                            // mass of strictly more likely tokens
            var removeSorted = before > o.TopP;                                               // the first token always stays
            var remove = zeros_like(removeSorted).scatter_(-1, order, removeSorted);
            x = x.masked_fill(remove, double.NegativeInfinity);
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Draws one token per row of logits [N, K] → [N] (int64), after <see cref="Filter"/>, by inverse CDF with one
    /// uniform per row from the (CPU) generator: the first id whose cumulative probability exceeds u·total.
    /// </summary>
    public static Tensor Sample(Tensor logits, TokenSamplingOptions o, Generator generator)
    {
        using var scope = NewDisposeScope();
        var x = Filter(logits, o);
        if (o.Temperature == 0) return x.argmax(-1).MoveToOuterDisposeScope();
        var cdf = x.softmax(-1).cumsum(-1);                                                   // [N, K]
        var u = DeviceRandom.Uniform(generator, [x.shape[0], 1], x.device);
        var ids = searchsorted(cdf, u * cdf.narrow(-1, x.shape[^1] - 1, 1), right: true)      // zero-probability ids are never chosen
            .clamp_max_(x.shape[^1] - 1).squeeze(-1);
        return ids.MoveToOuterDisposeScope();
    }
}
