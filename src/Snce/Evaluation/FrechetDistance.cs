using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// Fréchet distance between two Gaussians fitted to feature sets:
/// ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁ Σ₂)^½)   (Dowson &amp; Landau 1982; Heusel et al. 2017).
/// </summary>
/// <remarks>
/// Tr((Σ₁ Σ₂)^½) is computed as Tr((Σ₁^½ Σ₂ Σ₁^½)^½): Σ₁ Σ₂ is similar to the symmetric positive semi-definite
/// matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues), so the trace is Σᵢ √λᵢ of that matrix. Both square roots come from a
/// symmetric eigendecomposition (<c>torch.linalg.eigh</c>) in float64 with eigenvalues clamped at 0 — real
/// arithmetic throughout, unlike scipy.linalg.sqrtm on the non-symmetric product, which can return complex
/// parts. Covariances of fewer samples than dimensions are singular; the clamp handles their zero eigenvalues.
/// </remarks>
public static class FrechetDistance
{
    /// <summary>The Fréchet distance between the Gaussians (μ, Σ) of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static double Compute(FeatureStatistics a, FeatureStatistics b)
    {
        if (a.Dimension != b.Dimension) throw new ArgumentException($"feature dimensions differ: {a.Dimension} vs {b.Dimension}");
        using var scope = NewDisposeScope();
        var diff = a.Mean - b.Mean;
        var meanTerm = diff.dot(diff).item<double>();
        var rootA = SymmetricSqrt(a.Covariance);
        var middle = rootA.matmul(b.Covariance).matmul(rootA);
        var traceSqrt = EigenvaluesOfSymmetric(middle).clamp_min(0).sqrt().sum().item<double>();
        return meanTerm + a.Covariance.trace().item<double>() + b.Covariance.trace().item<double>() - 2 * traceSqrt;
    }

    /// <summary>The Fréchet distance between the Gaussians fitted to features [N, D] and [M, D].</summary>
    public static double Compute(Tensor featuresA, Tensor featuresB)
    {
        using var a = FeatureStatistics.Of(featuresA);
        using var b = FeatureStatistics.Of(featuresB);
        return Compute(a, b);
    }

    /// <summary>Σ^½ of a symmetric positive semi-definite matrix: Q diag(√max(λ, 0)) Qᵀ from its eigendecomposition.</summary>
    public static Tensor SymmetricSqrt(Tensor sym)
    {
        using var scope = NewDisposeScope();
        var s = Symmetrize(sym.to(ScalarType.Float64));
        var (values, vectors) = linalg.eigh(s);
        var root = (vectors * values.clamp_min(0).sqrt().unsqueeze(0)).matmul(vectors.t());
        return root.MoveToOuterDisposeScope();
    }

    static Tensor EigenvaluesOfSymmetric(Tensor m) => linalg.eigvalsh(Symmetrize(m));

    // Round-off makes products of symmetric matrices slightly asymmetric; eigh reads only one triangle.
    static Tensor Symmetrize(Tensor m) => (m + m.t()) * 0.5;
}
