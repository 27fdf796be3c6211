using Snce.Losses;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

/// <summary>
/// The independent dense reference: q = softmax(−Metric.Distance/τ) (top-k: truncated and renormalized) and
/// log p = log_softmax(logits) as full [N, K] tensors, loss by plain ops, gradients by autograd.
/// </summary>
static class DenseReference
{
    public static Tensor Targets(Tensor z, Tensor codebook, Metric metric, double tau, int? topK = null)
    {
        var s = -metric.Distance(z, codebook) / tau;
        if (topK is not int k) return s.softmax(1);
        var (v, i) = s.topk(k, dim: 1);
        return zeros_like(s).scatter_(1, i, v.softmax(1));
    }

    public static Tensor OneHot(Tensor tokens, long k, ScalarType dtype) =>
        zeros(tokens.shape[0], k, dtype: dtype).scatter_(1, tokens.unsqueeze(1), ones(tokens.shape[0], 1, dtype: dtype));

    /// <summary>Σ m_i w_i ℓ_i / max(Σ m_i, 1) with ℓ_i = −Σ_k q_ik log_softmax(logits)_ik.</summary>
    public static Tensor Loss(Tensor logits, Tensor q, Tensor? mask, Tensor? weights)
    {
        var li = -(q * logits.log_softmax(1)).sum(1);
        var m = mask?.to(li.dtype) ?? ones_like(li);
        var w = weights?.to(li.dtype) ?? ones_like(li);
        return (m * w * li).sum() / m.sum().clamp_min(1);
    }

    /// <summary>Mean over supervised rows of a per-row quantity.</summary>
    public static Tensor MaskedMean(Tensor perRow, Tensor? mask)
    {
        var m = mask?.to(perRow.dtype) ?? ones_like(perRow);
        return (m * perRow).sum() / m.sum().clamp_min(1);
    }

    public static Tensor Entropy(Tensor q) => -q.xlogy(q).sum(1);

    public static Tensor HardCe(Tensor logits, Tensor tokens) => -logits.log_softmax(1).gather(1, tokens.unsqueeze(1)).squeeze(1);

    /// <summary>A scalar tensor of any float dtype as a double.</summary>
    public static double Double(this Tensor t) => t.to(ScalarType.Float64).item<double>();

    public static double MaxAbs(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().Double();
}
