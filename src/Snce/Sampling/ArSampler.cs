using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>Options of autoregressive sampling.</summary>
/// <param name="Tokens">How to draw each token (temperature, top-k, top-p).</param>
/// <param name="CfgScale">Classifier-free guidance scale s (1 = conditional model, no unconditional pass).</param>
public sealed record ArSamplingOptions(TokenSamplingOptions Tokens, double CfgScale = 1.0);

/// <summary>
/// Raster-order autoregressive sampling: T draws, each from the model's next-token logits, optionally guided
/// (the conditional and null conditions run as one batch of 2B). Randomness comes only from the given
/// generator: same seed, same tokens. Modelled on LlamaGen's generate.py.
/// </summary>
public static class ArSampler
{
    /// <summary>
    /// Samples <paramref name="length"/> tokens for each condition [B, ...] → ids [B, length] (int64).
    /// <paramref name="unconditional"/> (the null condition, same shape) is needed when the CFG scale is not 1.
    /// </summary>
    public static Tensor Sample(NextTokenModel model, Tensor condition, Tensor? unconditional, int length,
        ArSamplingOptions options, Generator generator)
    {
        options.Tokens.Validate();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var b = condition.shape[0];
        var (guided, batchCondition) = Guidance.Conditions(condition, unconditional, options.CfgScale);
        var tokens = empty(b, length, dtype: ScalarType.Int64, device: condition.device);
        using var session = model(batchCondition);
        var next = empty(batchCondition.shape[0], 0, dtype: ScalarType.Int64, device: condition.device);
        for (var t = 0; t < length; t++)
        {
            using var step = NewDisposeScope();
            var logits = session.Feed(next);                                                 // [B or 2B, K]
            if (guided) logits = Guidance.Combine(logits, options.CfgScale);
            var id = TokenSampling.Sample(logits, options.Tokens, generator);                // [B]
            tokens.select(1, t).copy_(id);
            next = (guided ? cat([id, id], 0) : id).unsqueeze(1).MoveToOuterDisposeScope();
        }
        return tokens.MoveToOuterDisposeScope();
    }
}
