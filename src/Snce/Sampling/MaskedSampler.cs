using Snce.Objectives;
using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>Options of masked parallel decoding.</summary>
/// <param name="Steps">Decoding steps S (each reveals a share of the tokens; all are revealed after S).</param>
/// <param name="Tokens">How to draw each token (temperature, top-k, top-p).</param>
/// <param name="ChoiceTemperature">Scale of the Gumbel noise added to the confidences, annealed linearly to 0 (MaskGIT: 4.5).</param>
/// <param name="CfgScale">Classifier-free guidance scale (1 = conditional model).</param>
/// <param name="Schedule">How many tokens stay masked after each step (the training schedule).</param>
/// <param name="CfgSchedule">How the guidance scale varies over the steps: step i of S is guided with <c>CfgSchedule.ScaleAt(s, i, S)</c>
/// (linear: 1 at the first step, s at the last); a step at scale 1 runs the conditional model alone.</param>
public sealed record MaskedSamplingOptions(int Steps, TokenSamplingOptions Tokens, double ChoiceTemperature = 4.5,
    double CfgScale = 1.0, MaskScheduleKind Schedule = MaskScheduleKind.Cosine, CfgSchedule CfgSchedule = CfgSchedule.Constant);

/// <summary>
/// MaskGIT parallel decoding (Chang et al. 2022; google-research/maskgit parallel_decode.decode): start fully
/// masked; at each step draw every masked token, score the draws by log-probability plus annealed Gumbel noise,
/// keep the most confident and re-mask the other ⌊γ(r_s)·T⌋ (at least one revealed per step, none masked
/// after the last). Randomness comes only from the given generator.
/// </summary>
/// <remarks>
/// Generation starts at progress r₀ = 0 and steps r_s = (s+1)/S. Inpainting (<see cref="Inpaint"/>) starts from the
/// source tokens with only the editable ones masked, at the progress r₀ = γ⁻¹(m/T) where the schedule has m of T tokens
/// masked, and steps r_s = r₀ + (1 − r₀)(s+1)/S: the schedule continues from the masked fraction (MaskGIT's and
/// aMUSEd's inpainting). Tokens that start unmasked are never re-masked, so they come back unchanged.
/// </remarks>
public static class MaskedSampler
{
    /// <summary>Samples ids [B, length] (int64, no [MASK] left) for each condition [B, ...].</summary>
    public static Tensor Sample(MaskedModel model, Tensor condition, Tensor? unconditional, int length, long maskToken,
        MaskedSamplingOptions options, Generator generator)
    {
        using var scope = NewDisposeScope();
        var start = full(condition.shape[0], length, maskToken, dtype: ScalarType.Int64, device: condition.device);
        return Decode(model, condition, unconditional, start, maskToken, options, generator).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Regenerates the <paramref name="editable"/> tokens [B, T] (bool; the same count in every row) of
    /// <paramref name="source"/> ids [B, T] (int64, no [MASK]) and returns ids [B, T]: every other token equals the source's.
    /// </summary>
    public static Tensor Inpaint(MaskedModel model, Tensor condition, Tensor? unconditional, Tensor source, Tensor editable, long maskToken,
        MaskedSamplingOptions options, Generator generator)
    {
        EditInputs.Check(source, editable, condition);
        using var scope = NewDisposeScope();
        if ((source == maskToken).any().item<bool>()) throw new ArgumentException($"the source tokens contain the [MASK] id {maskToken}");
        var start = source.to_type(ScalarType.Int64).masked_fill(editable.to(source.device), maskToken);
        return Decode(model, condition, unconditional, start, maskToken, options, generator).MoveToOuterDisposeScope();
    }

    /// <summary>Parallel decoding from <paramref name="tokens"/> [B, T] whose [MASK]s (the same count per row) are to be filled.</summary>
    static Tensor Decode(MaskedModel model, Tensor condition, Tensor? unconditional, Tensor tokens, long maskToken,
        MaskedSamplingOptions options, Generator generator)
    {
        options.Tokens.Validate();
        if (options.Steps < 1) throw new ArgumentException($"steps must be ≥ 1 (got {options.Steps})");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (b, length) = (tokens.shape[0], (int)tokens.shape[1]);
        var (guided, batchCondition) = Guidance.Conditions(condition, unconditional, options.CfgScale);
        tokens = tokens.clone();
        var perRow = (tokens == maskToken).sum(1);
        long unknown = perRow.max().item<long>();                                             // masked count, the same in every row
        if (perRow.min().item<long>() != unknown)
            throw new ArgumentException("every row must have the same number of tokens to generate (one region for the whole batch)");
        var r0 = unknown == length ? 0.0 : options.Schedule.ProgressAt((double)unknown / length);
        for (var s = 0; s < options.Steps && unknown > 0; s++)
        {
            using var step = NewDisposeScope();
            var scale = options.CfgSchedule.ScaleAt(options.CfgScale, s, options.Steps);
            var logits = guided && Guidance.NeedsUnconditional(scale)
                ? Guidance.Combine(model(batchCondition, cat([tokens, tokens], 0)), scale)       // [2B, T, K] → [B, T, K]
                : model(condition, tokens);                                                      // [B, T, K]
            var k = logits.shape[^1];
            var flat = logits.reshape(-1, k);
            var sampled = TokenSampling.Sample(flat, options.Tokens, generator).view(b, length);
            var isMasked = tokens == maskToken;
            sampled = where(isMasked, sampled, tokens);
            var r = r0 + (1 - r0) * (s + 1.0) / options.Steps;
            long keepMasked = s == options.Steps - 1 ? 0 : Math.Min(Math.Max(1, (long)Math.Floor(options.Schedule.MaskRatio(r) * length)), unknown - 1);
            if (keepMasked > 0)
            {
                var logp = flat.to_type(ScalarType.Float32).log_softmax(-1).gather(-1, sampled.view(-1, 1)).view(b, length);
                var gumbel = -(-DeviceRandom.Uniform(generator, [b, length], tokens.device).clamp_(1e-20, 1).log_()).log_();
                var confidence = logp + options.ChoiceTemperature * (1 - r) * gumbel;
                confidence = confidence.masked_fill(isMasked.logical_not(), double.PositiveInfinity);   // revealed (and kept) tokens stay
                var remask = zeros_like(isMasked).scatter_(1, confidence.topk((int)keepMasked, dim: 1, largest: false).indexes, ones_like(isMasked));
                sampled = sampled.masked_fill(remask, maskToken);
            }
            tokens.copy_(sampled);
            unknown = keepMasked;
        }
        return tokens.MoveToOuterDisposeScope();
    }
}
