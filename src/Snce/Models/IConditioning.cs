using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Turns a batch of conditions into prefix embeddings that the backbone reads before the image tokens
/// (LlamaGen's prefix token, also used by the masked generator). Class labels implement it now
/// (<see cref="ClassConditioning"/>); captions implement it with a longer prefix (<see cref="TextConditioning"/>), a source image with its
/// tokens (<see cref="SourceTokenConditioning"/>), an instruction edit with both of the last two (<see cref="InstructionConditioning"/>).
/// </summary>
/// <remarks>
/// A condition is a tensor whose first dimension is the batch: class ids [B] (int64) here; for text, packed
/// token states and pooled vector [B, L + 1, E + 1]; for an instruction edit, both flattened into one float row. Classifier-free guidance needs a "null" condition: training
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

    /// <summary>
    /// Which prefix slots other slots may attend to, [B, P] (bool, true = attend), or null when all may (class labels).
    /// Text uses it to mask padded caption slots out of attention.
    /// </summary>
    Tensor? PrefixMask(Tensor condition) => null;
}
