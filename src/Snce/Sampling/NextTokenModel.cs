using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>
/// One decoding session of an autoregressive model for a batch of conditions: feed tokens, get the logits
/// of the token that follows. What the AR sampler sees of the network.
/// </summary>
public interface INextTokenSession : IDisposable
{
    /// <summary>
    /// Appends tokens [B, n] (n = 0 on the first call: the condition alone) and returns logits [B, K] for the
    /// next token. The caller owns the result.
    /// </summary>
    Tensor Feed(Tensor tokens);
}

/// <summary>An autoregressive model as a function: condition [B, ...] → a decoding session.</summary>
public delegate INextTokenSession NextTokenModel(Tensor condition);

/// <summary>A masked model as a function: (condition [B, ...], ids [B, T] with [MASK]s) → logits [B, T, K].</summary>
public delegate Tensor MaskedModel(Tensor condition, Tensor tokens);

/// <summary>Adapters from <see cref="TokenGenerator"/> to the sampler functions.</summary>
public static class GeneratorFunctions
{
    /// <summary>AR decoding with a KV cache: each new token costs one slot of compute.</summary>
    public static NextTokenModel KvCached(TokenGenerator model) => condition => new KvCacheSession(model, condition);

    /// <summary>AR decoding without a cache: every step re-runs the whole prefix (the baseline the cache is measured against).</summary>
    public static NextTokenModel Recompute(TokenGenerator model) => condition => new RecomputeSession(model, condition);

    /// <summary>The masked generator's forward pass.</summary>
    public static MaskedModel Masked(TokenGenerator model) => model.Forward;

    sealed class KvCacheSession(TokenGenerator model, Tensor condition) : INextTokenSession
    {
        readonly KvCache cache = model.NewCache(condition.shape[0]);

        public Tensor Feed(Tensor tokens) => model.Decode(cache.Length == 0 ? condition : null, tokens, cache);

        /// <inheritdoc/>
        public void Dispose() => cache.Dispose();
    }

    sealed class RecomputeSession(TokenGenerator model, Tensor condition) : INextTokenSession
    {
        Tensor? soFar;

        public Tensor Feed(Tensor tokens)
        {
            using var scope = NewDisposeScope();
            var next = soFar is null ? tokens.clone() : cat([soFar, tokens], 1);
            soFar?.Dispose();
            soFar = next.DetachFromDisposeScope();
            return model.Logits(model.ForwardHidden(condition, soFar).select(1, -1)).MoveToOuterDisposeScope();   // head on the last row only
        }

        /// <inheritdoc/>
        public void Dispose() => soFar?.Dispose();
    }
}
