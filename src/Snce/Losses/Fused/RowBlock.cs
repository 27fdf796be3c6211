using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>What each row is trained towards.</summary>
internal enum TargetKind
{
    /// <summary>One-hot at the token (cross-entropy).</summary>
    Hard,
    /// <summary>q = softmax(−d/τ) over the whole codebook (SNCE).</summary>
    Dense,
    /// <summary>q over the k nearest codes, renormalized (SNCE top-k).</summary>
    TopK,
}

/// <summary>The target of one row block, in the form the row-wise step consumes.</summary>
internal abstract record RowTarget
{
    /// <summary>One-hot at the block's tokens.</summary>
    public sealed record Hard : RowTarget;

    /// <summary>Raw target scores r, q = softmax(r/τ): <c>Raw(c0, len)</c> gives columns [c0, c0 + len) as [rows, len].</summary>
    public sealed record Dense(Func<long, long, Tensor> Raw) : RowTarget;

    /// <summary>k (code, probability) pairs per row: <paramref name="Index"/> [rows, k] int64, <paramref name="Q"/> [rows, k] summing to 1.</summary>
    public sealed record Sparse(Tensor Index, Tensor Q) : RowTarget;

    /// <summary>
    /// q = softmax(r/τ) over each row's <paramref name="K"/> largest raw scores r, selected by the row step itself from
    /// the full scores (<c>Raw</c> as in <see cref="Dense"/>): top-k without a separate search over the codebook.
    /// </summary>
    public sealed record TopOfScores(Func<long, long, Tensor> Raw, int K) : RowTarget;
}

/// <summary>
/// One row block for the row-wise step.
/// </summary>
/// <param name="Logits">[R, K] (a view; last dimension contiguous for the kernel).</param>
/// <param name="Grad">[R, K] written with coef_i (softmax(l_i) − q_i), or null for statistics only. May be <paramref name="Logits"/> itself.</param>
/// <param name="Target">The target.</param>
/// <param name="Tokens">[R] int64 nearest code per row (valid indices also on masked rows).</param>
/// <param name="Coef">[R] m_i w_i / Σ m in <paramref name="MathDtype"/>.</param>
/// <param name="Mask">[R] bool or null.</param>
/// <param name="Tau">τ (scores are divided by it).</param>
/// <param name="MathDtype">Float32 or Float64: dtype of the statistics.</param>
/// <param name="CodeChunk">Codes per elementwise step (libtorch backend).</param>
internal sealed record RowBlock(Tensor Logits, Tensor? Grad, RowTarget Target, Tensor Tokens, Tensor Coef, Tensor? Mask,
    double Tau, ScalarType MathDtype, long CodeChunk);

/// <summary>
/// The row-wise step: per row, lse(l), Σ q·l, H(q), the hard-CE term and (optionally) the gradient.
/// Returns stats [R, 4] in the block's math dtype: (ℓ_i = lse − Σ q l, lse − l_token, H(q), lse), zero on masked rows.
/// </summary>
internal interface IRowKernel
{
    /// <summary>Short name for reports: "torch" or "cuda".</summary>
    string Name { get; }

    /// <summary>Runs one block.</summary>
    Tensor Run(RowBlock block);
}
