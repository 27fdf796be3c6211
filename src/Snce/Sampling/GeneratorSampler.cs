using Snce.Models;
using Snce.Objectives;
using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>What to sample from a <see cref="TokenGenerator"/>.</summary>
/// <param name="Tokens">Temperature, top-k, top-p of each draw.</param>
/// <param name="CfgScale">Classifier-free guidance scale (1 = conditional model).</param>
/// <param name="Steps">Masked generator: parallel decoding steps.</param>
/// <param name="ChoiceTemperature">Masked generator: Gumbel noise on the confidences, annealed to 0.</param>
/// <param name="Schedule">Masked generator: the masking schedule (the one it was trained with).</param>
/// <param name="KvCache">AR generator: decode with the KV cache (false = recompute the prefix each token).</param>
/// <param name="BatchSize">Images per forward batch (CFG doubles it internally).</param>
/// <param name="CfgSchedule">How the guidance scale varies over the decoding: per token position (AR) or per decoding step (masked).</param>
public sealed record GeneratorSamplingOptions(
    TokenSamplingOptions Tokens,
    double CfgScale = 1.0,
    int Steps = 8,
    double ChoiceTemperature = 4.5,
    MaskScheduleKind Schedule = MaskScheduleKind.Cosine,
    bool KvCache = true,
    int BatchSize = 64,
    CfgSchedule CfgSchedule = CfgSchedule.Constant)
{
    /// <summary>The AR sampler's share of these options.</summary>
    public ArSamplingOptions Ar => new(Tokens, CfgScale, CfgSchedule);

    /// <summary>The masked decoder's share of these options.</summary>
    public MaskedSamplingOptions Masked => new(Steps, Tokens, ChoiceTemperature, CfgScale, Schedule, CfgSchedule);
}

/// <summary>Samples token images from a generator of either kind, batch by batch; the caller decodes them.</summary>
public static class GeneratorSampler
{
    /// <summary>
    /// One image per condition in <paramref name="conditions"/> [n] (class ids; −1 = unconditional) → ids [n, T] (int64, on
    /// the model's device). Deterministic given <paramref name="generator"/>'s state.
    /// </summary>
    public static Tensor Sample(TokenGenerator model, Tensor conditions, GeneratorSamplingOptions o, Generator generator)
    {
        if (o.BatchSize < 1) throw new ArgumentException($"sampling batch size must be ≥ 1 (got {o.BatchSize})");
        using var scope = NewDisposeScope();
        var n = conditions.shape[0];
        var t = model.Config.SequenceLength;
        var result = empty(n, t, dtype: ScalarType.Int64, device: model.Device);
        for (long start = 0; start < n; start += o.BatchSize)
        {
            using var batchScope = NewDisposeScope();
            var c = conditions.narrow(0, start, Math.Min(o.BatchSize, n - start)).to(model.Device);
            var u = model.Conditioning.NullLike(c);
            var ids = model.Causal
                ? ArSampler.Sample(o.KvCache ? GeneratorFunctions.KvCached(model) : GeneratorFunctions.Recompute(model), c, u, t,
                    o.Ar, generator)
                : MaskedSampler.Sample(GeneratorFunctions.Masked(model), c, u, t, model.Config.MaskToken,
                    o.Masked, generator);
            result.narrow(0, start, c.shape[0]).copy_(ids);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Inpainting: regenerates the <paramref name="editable"/> tokens [n, T] (bool; for the masked generator the same count
    /// in every row) of <paramref name="source"/> ids [n, T] under <paramref name="conditions"/> [n, ...] → ids [n, T] (int64,
    /// on the model's device) equal to the source outside the editable tokens. Masked: parallel decoding from the masked
    /// fraction; AR: raster order from the first editable token with the kept tokens forced.
    /// </summary>
    public static Tensor Inpaint(TokenGenerator model, Tensor conditions, Tensor source, Tensor editable, GeneratorSamplingOptions o, Generator generator)
    {
        if (o.BatchSize < 1) throw new ArgumentException($"sampling batch size must be ≥ 1 (got {o.BatchSize})");
        var t = model.Config.SequenceLength;
        if (source.dim() != 2 || source.shape[1] != t)
            throw new ArgumentException($"source tokens must be [n, {t}] for this {model.Config.GridHeight}x{model.Config.GridWidth} generator, got [{string.Join(", ", source.shape)}]");
        using var scope = NewDisposeScope();
        var ids = source.to_type(ScalarType.Int64).to(model.Device);
        if (ids.numel() > 0 && (ids.min().item<long>() < 0 || ids.max().item<long>() >= model.Config.CodebookSize))
            throw new ArgumentException($"source token ids must be in [0, {model.Config.CodebookSize}) (the generator's codebook); got {ids.min().item<long>()}..{ids.max().item<long>()}");
        var edit = editable.to(model.Device);
        var n = conditions.shape[0];
        var result = empty(n, t, dtype: ScalarType.Int64, device: model.Device);
        for (long start = 0; start < n; start += o.BatchSize)
        {
            using var batchScope = NewDisposeScope();
            var m = Math.Min(o.BatchSize, n - start);
            var c = conditions.narrow(0, start, m).to(model.Device);
            var u = model.Conditioning.NullLike(c);
            var (x, e) = (ids.narrow(0, start, m), edit.narrow(0, start, m));
            var filled = model.Causal
                ? ArSampler.Inpaint(o.KvCache ? GeneratorFunctions.KvCached(model) : GeneratorFunctions.Recompute(model), c, u, x, e,
                    o.Ar, generator)
                : MaskedSampler.Inpaint(GeneratorFunctions.Masked(model), c, u, x, e, model.Config.MaskToken,
                    o.Masked, generator);
            result.narrow(0, start, m).copy_(filled);
        }
        return result.MoveToOuterDisposeScope();
    }
}
