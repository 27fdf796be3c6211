using Snce.Objectives;
using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>Options of masked parallel decoding.</summary>
/// <param name="Steps">Decoding steps S (each reveals a share of the tokens; all are revealed after S).</param>
/// <param name="Tokens">How to draw each token (temperature, top-k, top-p).</param>
/// <param name="ChoiceTemperature">Scale of the Gumbel noise added to the confidences, annealed linearly to 0 (MaskGIT: 4.5).</param>
/// <param name="CfgScale">Classifier-free guidance scale (1 = conditional model).</param>
/// <param name="Schedule">How many tokens stay masked after each step (the training schedule).</param>
public sealed record MaskedSamplingOptions(int Steps, TokenSamplingOptions Tokens, double ChoiceTemperature = 4.5,
    double CfgScale = 1.0, MaskScheduleKind Schedule = MaskScheduleKind.Cosine);

/// <summary>
/// MaskGIT parallel decoding (Chang et al. 2022; google-research/maskgit parallel_decode.decode): start fully
/// masked; at each step draw every masked token, score the draws by log-probability plus annealed Gumbel noise,
/// keep the most confident and re-mask the other ⌊γ((s+1)/S)·T⌋ (at least one revealed per step, none masked
/// after the last). Randomness comes only from the given generator.
/// </summary>
public static class MaskedSampler
{
    /// <summary>Samples ids [B, length] (int64, no [MASK] left) for each condition [B, ...].</summary>
    public static Tensor Sample(MaskedModel model, Tensor condition, Tensor? unconditional, int length, long maskToken,
        MaskedSamplingOptions options, Generator generator)
    {
        options.Tokens.Validate();
        if (options.Steps < 1) throw new ArgumentException($"steps must be ≥ 1 (got {options.Steps})");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var b = condition.shape[0];
        var (guided, batchCondition) = Guidance.Conditions(condition, unconditional, options.CfgScale);
        var tokens = full(b, length, maskToken, dtype: ScalarType.Int64, device: condition.device);
        long unknown = length;                                                                // masked count, the same in every row
        for (var s = 0; s < options.Steps; s++)
        {
            using var step = NewDisposeScope();
            var input = guided ? cat([tokens, tokens], 0) : tokens;
            var logits = model(batchCondition, input);                                         // [B or 2B, T, K]
            if (guided) logits = Guidance.Combine(logits, options.CfgScale);
            var k = logits.shape[^1];
            var flat = logits.reshape(-1, k);
            var sampled = TokenSampling.Sample(flat, options.Tokens, generator).view(b, length);
            var isMasked = tokens == maskToken;
            sampled = where(isMasked, sampled, tokens);
            var r = (s + 1.0) / options.Steps;
            long keepMasked = s == options.Steps - 1 ? 0 : Math.Min(Math.Max(1, (long)Math.Floor(options.Schedule.MaskRatio(r) * length)), unknown - 1);
            if (keepMasked > 0)
            {
                var logp = flat.to_type(ScalarType.Float32).log_softmax(-1).gather(-1, sampled.view(-1, 1)).view(b, length);
                var gumbel = -(-DeviceRandom.Uniform(generator, [b, length], tokens.device).clamp_(1e-20, 1).log_()).log_();
                var confidence = logp + options.ChoiceTemperature * (1 - r) * gumbel;
                confidence = confidence.masked_fill(isMasked.logical_not(), double.PositiveInfinity);   // revealed tokens stay
                var remask = zeros_like(isMasked).scatter_(1, confidence.topk((int)keepMasked, dim: 1, largest: false).indexes, ones_like(isMasked));
                sampled = sampled.masked_fill(remask, maskToken);
            }
            tokens.copy_(sampled);
            unknown = keepMasked;
        }
        return tokens.MoveToOuterDisposeScope();
    }
}
