using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// A token loss that can also take the rows' hidden states and the output head instead of their logits, so that the
/// [N, K] logits (and their gradient) are never materialized. Objectives prefer this form when the loss offers it;
/// its value, metrics and gradients are those of <see cref="ITokenLoss.Forward"/> on <c>hidden · weightᵀ + bias</c>.
/// </summary>
public interface IHiddenStateLoss : ITokenLoss
{
    /// <summary>
    /// The loss of logits = <paramref name="hidden"/> [N, H] · <paramref name="weight"/>ᵀ [H, K] + <paramref name="bias"/> [K]
    /// (or none), with the targets, mask and weights of <see cref="ITokenLoss.Forward"/>; gradients reach all three inputs.
    /// </summary>
    LossOutput ForwardLinear(Tensor hidden, Tensor weight, Tensor? bias, TokenTargets targets);
}
