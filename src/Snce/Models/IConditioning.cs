using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Turns a batch of conditions into prefix embeddings that the backbone reads before the image tokens
/// (LlamaGen's prefix token, also used by the masked generator). Class labels implement it now
/// (<see cref="ClassConditioning"/>); a text encoder's embeddings can implement it later with a longer prefix.
/// </summary>
/// <remarks>
/// A condition is a tensor whose first dimension is the batch: class ids [B] (int64) here; for text it
/// would be token embeddings [B, L, E]. Classifier-free guidance needs a "null" condition: training
/// replaces conditions by it with some probability (<see cref="Drop"/>), sampling runs it next to the real one.
/// </remarks>
public interface IConditioning
{
    /// <summary>P: prefix slots this conditioning occupies.</summary>
    int PrefixLength { get; }

    /// <summary>condition [B, ...] → prefix embeddings [B, P, d] (differentiable w.r.t. the conditioning's weights).</summary>
    Tensor Embed(Tensor condition);

    /// <summary>The null (unconditional) condition with the same shape, dtype and device as <paramref name="condition"/>.</summary>
    Tensor NullLike(Tensor condition);

    /// <summary>Replaces the conditions where <paramref name="drop"/> [B] (bool) is true by the null condition.</summary>
    Tensor Drop(Tensor condition, Tensor drop);
}
