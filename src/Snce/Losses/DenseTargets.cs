using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// A loss whose per-row value is a cross-entropy −Σ_k t_k log p_k against a target distribution t (for the
/// stochastic loss: in expectation over its random draws). The target can be materialized as [N, K], for
/// inspection, for tests (∂loss/∂logits = m w (softmax − t) / Σ m) and for <c>snce loss</c>.
/// </summary>
public interface IDenseTargets
{
    /// <summary>The [N, K] target distribution (rows sum to 1) for these targets, in <paramref name="dtype"/>. Materializes N × K values.</summary>
    Tensor DenseTargets(TokenTargets targets, ScalarType dtype);
}
