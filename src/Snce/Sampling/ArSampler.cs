using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>Options of autoregressive sampling.</summary>
/// <param name="Tokens">How to draw each token (temperature, top-k, top-p).</param>
/// <param name="CfgScale">Classifier-free guidance scale s (1 = conditional model, no unconditional pass).</param>
/// <param name="CfgSchedule">How the scale varies over the token positions: the token at raster position t of T is guided with
/// <c>CfgSchedule.ScaleAt(s, t, T)</c> (linear: 1 at the first token, s at the last), in generation and inpainting alike.</param>
public sealed record ArSamplingOptions(TokenSamplingOptions Tokens, double CfgScale = 1.0, CfgSchedule CfgSchedule = CfgSchedule.Constant);

/// <summary>
/// Raster-order autoregressive sampling: T draws, each from the model's next-token logits, optionally guided
/// (the conditional and null conditions run as one batch of 2B). Randomness comes only from the given
/// generator: same seed, same tokens. Modelled on LlamaGen's generate.py.
/// </summary>
/// <remarks>
/// Inpainting (<see cref="Inpaint"/>) feeds the source tokens before the first editable position p in one call, then
/// decodes positions p..T−1 one by one: an editable token is drawn, a kept token is forced (the source's id is written and
/// fed as if it had been drawn). It costs T − p sequential forward steps whatever the region's size (the masked sampler
/// costs S parallel steps), and an editable token sees only the tokens before it in raster order: the kept tokens below
/// and to the right of it do not inform it.
/// </remarks>
public static class ArSampler
{
    /// <summary>
    /// Samples <paramref name="length"/> tokens for each condition [B, ...] → ids [B, length] (int64).
    /// <paramref name="unconditional"/> (the null condition, same shape) is needed when the CFG scale is not 1.
    /// </summary>
    public static Tensor Sample(NextTokenModel model, Tensor condition, Tensor? unconditional, int length,
        ArSamplingOptions options, Generator generator)
    {
        using var scope = NewDisposeScope();
        var tokens = empty(condition.shape[0], length, dtype: ScalarType.Int64, device: condition.device);
        Decode(model, condition, unconditional, tokens, null, 0, options, generator);
        return tokens.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Regenerates the <paramref name="editable"/> tokens [B, T] (bool) of <paramref name="source"/> ids [B, T] in raster
    /// order, with every other token forced to the source's → ids [B, T] (int64). Rows may have different regions; decoding
    /// starts at the earliest editable position of the batch.
    /// </summary>
    public static Tensor Inpaint(NextTokenModel model, Tensor condition, Tensor? unconditional, Tensor source, Tensor editable,
        ArSamplingOptions options, Generator generator)
    {
        EditInputs.Check(source, editable, condition);
        using var scope = NewDisposeScope();
        var tokens = source.to_type(ScalarType.Int64).clone();
        var edit = editable.to(tokens.device);
        var any = edit.any(0);                                                                // [T]: editable in some row
        if (!any.any().item<bool>()) return tokens.MoveToOuterDisposeScope();
        var first = (int)any.to_type(ScalarType.Int64).argmax().item<long>();                 // first true position
        Decode(model, condition, unconditional, tokens, edit, first, options, generator);
        return tokens.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Writes positions <paramref name="first"/>..T−1 of <paramref name="tokens"/> [B, T] in place: a draw where <paramref name="editable"/>
    /// is true (or everywhere when it is null), else the id already there. Positions before <paramref name="first"/> are the prefix.
    /// </summary>
    static void Decode(NextTokenModel model, Tensor condition, Tensor? unconditional, Tensor tokens, Tensor? editable, int first,
        ArSamplingOptions options, Generator generator)
    {
        options.Tokens.Validate();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var length = (int)tokens.shape[1];
        var (guided, batchCondition) = Guidance.Conditions(condition, unconditional, options.CfgScale);
        using var session = model(batchCondition);
        var prefix = tokens.narrow(1, 0, first);                                              // [B, first] (empty for generation)
        var next = guided ? cat([prefix, prefix], 0) : prefix;
        for (var t = first; t < length; t++)
        {
            using var step = NewDisposeScope();
            var logits = session.Feed(next);                                                 // [B or 2B, K]
            if (guided) logits = Guidance.Combine(logits, options.CfgSchedule.ScaleAt(options.CfgScale, t, length));
            var id = TokenSampling.Sample(logits, options.Tokens, generator);                // [B]
            if (editable is not null) id = where(editable.select(1, t), id, tokens.select(1, t));
            tokens.select(1, t).copy_(id);
            next = (guided ? cat([id, id], 0) : id).unsqueeze(1).MoveToOuterDisposeScope();
        }
    }
}
