using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// SNCE (soft-target cross-entropy against q = softmax(−d(z, C)/τ)) without materializing q or log p as [N, K]:
/// rows are processed in blocks, both log-sum-exps are online, the gradient is produced block by block in the
/// forward pass, and <c>loss.backward()</c> delivers it through autograd. Algorithm: docs/fused-snce.md.
/// </summary>
/// <remarks>
/// Loss = Σ_i m_i w_i ℓ_i / Σ_i m_i with ℓ_i = −Σ_k q(k|z_i) log p(k|i); HardCe and TargetEntropy are means over
/// supervised rows. Empty masks give 0. Anchors z are the encoder latents (latent-anchored) or codebook[tokens]
/// (code-anchored).
/// </remarks>
public static class FusedSnce
{
    /// <summary>
    /// Fused SNCE on given logits [N, K]. The gradient w.r.t. the logits ([N, K], their dtype) is computed in the
    /// forward pass and reaches the logits through autograd.
    /// </summary>
    /// <param name="logits">[N, K] float (bf16, fp32 or fp64).</param>
    /// <param name="anchors">[N, D] z per row.</param>
    /// <param name="codebook">[K, D].</param>
    /// <param name="metric">The dissimilarity d.</param>
    /// <param name="tau">Temperature τ &gt; 0.</param>
    /// <param name="tokens">[N] int64 nearest code per row (the hard-CE metric, and the centering of the target scores).</param>
    /// <param name="mask">[N] bool supervised rows, or null for all.</param>
    /// <param name="weights">[N] per-row weights, or null for 1.</param>
    /// <param name="topK">Truncate q to the k nearest codes (renormalized); null for the full codebook.</param>
    /// <param name="options">Chunking, compute dtype and backend.</param>
    /// <param name="neighbors">With <paramref name="topK"/>: the codebook's neighbor table, so that rows whose top-k it
    /// certifies are not searched over the whole codebook (<see cref="CodeNeighbors"/>); null: every row is.</param>
    public static LossOutput Forward(Tensor logits, Tensor anchors, Tensor codebook, Metric metric, double tau, Tensor tokens,
        Tensor? mask, Tensor? weights, int? topK = null, FusedOptions? options = null, CodeNeighbors? neighbors = null) =>
        FusedEngine.Run(new FusedProblem
        {
            Logits = logits, Tokens = tokens, Mask = mask, Weights = weights,
            Kind = topK is null ? TargetKind.Dense : TargetKind.TopK, TopK = topK ?? 0,
            Anchors = anchors, Codebook = codebook, Metric = metric, Tau = tau, Neighbors = neighbors, Options = options ?? FusedOptions.Default,
        });

    /// <summary>
    /// Fused SNCE with the output projection logits = hidden · weightᵀ + bias folded in: logits exist only one row
    /// block at a time, and the gradients w.r.t. hidden, weight and bias are accumulated block by block in the
    /// forward pass and delivered through autograd (each only when its tensor requires grad).
    /// </summary>
    /// <param name="hidden">[N, H].</param>
    /// <param name="weight">[K, H] output projection.</param>
    /// <param name="bias">[K] or null.</param>
    /// <param name="anchors">[N, D].</param>
    /// <param name="codebook">[K, D].</param>
    /// <param name="metric">The dissimilarity d.</param>
    /// <param name="tau">Temperature τ &gt; 0.</param>
    /// <param name="tokens">[N] int64 nearest code per row.</param>
    /// <param name="mask">[N] bool supervised rows, or null for all.</param>
    /// <param name="weights">[N] per-row weights, or null for 1.</param>
    /// <param name="options">Chunking, compute dtype and backend.</param>
    /// <param name="topK">Truncate q to the k nearest codes (renormalized); null for the full codebook.</param>
    /// <param name="neighbors">With <paramref name="topK"/>: the codebook's neighbor table (see <see cref="Forward"/>).</param>
    public static LossOutput ForwardLinear(Tensor hidden, Tensor weight, Tensor? bias, Tensor anchors, Tensor codebook, Metric metric,
        double tau, Tensor tokens, Tensor? mask, Tensor? weights, FusedOptions? options = null, int? topK = null, CodeNeighbors? neighbors = null) =>
        FusedEngine.Run(new FusedProblem
        {
            Hidden = hidden, Weight = weight, Bias = bias, Tokens = tokens, Mask = mask, Weights = weights,
            Kind = topK is null ? TargetKind.Dense : TargetKind.TopK, TopK = topK ?? 0,
            Anchors = anchors, Codebook = codebook, Metric = metric, Tau = tau, Neighbors = neighbors, Options = options ?? FusedOptions.Default,
        });
}

/// <summary>
/// Plain cross-entropy on the tokens through the same fused machinery as <see cref="FusedSnce"/> (hard targets):
/// the baseline the fused SNCE is measured against.
/// </summary>
public static class FusedCrossEntropy
{
    /// <summary>Fused CE on given logits [N, K]; see <see cref="FusedSnce.Forward"/> for the conventions.</summary>
    public static LossOutput Forward(Tensor logits, Tensor tokens, Tensor? mask, Tensor? weights, FusedOptions? options = null) =>
        FusedEngine.Run(new FusedProblem
        {
            Logits = logits, Tokens = tokens, Mask = mask, Weights = weights, Kind = TargetKind.Hard,
            Options = options ?? FusedOptions.Default,
        });

    /// <summary>Fused CE with the output projection folded in; see <see cref="FusedSnce.ForwardLinear"/>.</summary>
    public static LossOutput ForwardLinear(Tensor hidden, Tensor weight, Tensor? bias, Tensor tokens, Tensor? mask, Tensor? weights,
        FusedOptions? options = null) =>
        FusedEngine.Run(new FusedProblem
        {
            Hidden = hidden, Weight = weight, Bias = bias, Tokens = tokens, Mask = mask, Weights = weights, Kind = TargetKind.Hard,
            Options = options ?? FusedOptions.Default,
        });
}
