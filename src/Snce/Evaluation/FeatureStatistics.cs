using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>Mean and covariance of a set of feature vectors, in float64 on the CPU (the Gaussian fit behind a Fréchet distance).</summary>
public sealed class FeatureStatistics : IDisposable
{
    /// <summary>float64 [D].</summary>
    public Tensor Mean { get; }
    /// <summary>float64 [D, D], unbiased (divided by N − 1).</summary>
    public Tensor Covariance { get; }
    /// <summary>How many vectors the statistics summarize.</summary>
    public long Count { get; }

    /// <summary>Copies <paramref name="mean"/> [D] and <paramref name="covariance"/> [D, D] to float64 on the CPU (the caller keeps its tensors).</summary>
    public FeatureStatistics(Tensor mean, Tensor covariance, long count)
    {
        if (mean.dim() != 1 || covariance.dim() != 2 || covariance.shape[0] != mean.shape[0] || covariance.shape[1] != mean.shape[0])
            throw new ArgumentException($"mean must be [D] and covariance [D, D]; got [{string.Join(", ", mean.shape)}] and [{string.Join(", ", covariance.shape)}]");
        // The object owns its copies whatever dispose scope the caller is in; Dispose frees them.
        using var scope = NewDisposeScope();
        Mean = mean.detach().to(ScalarType.Float64).cpu().clone().DetachFromDisposeScope();
        Covariance = covariance.detach().to(ScalarType.Float64).cpu().clone().DetachFromDisposeScope();
        Count = count;
    }

    /// <summary>D, the feature length (512 for FD-ResNet18).</summary>
    public int Dimension => (int)Mean.shape[0];


    /// <summary>Statistics of features [N, D] (N ≥ 2).</summary>
    public static FeatureStatistics Of(Tensor features)
    {
        if (features.dim() != 2) throw new ArgumentException($"features must be [N, D]; got [{string.Join(", ", features.shape)}]");
        var n = features.shape[0];
        if (n < 2) throw new ArgumentException($"a covariance needs at least 2 feature vectors; got {n}");
        using var scope = NewDisposeScope();
        var x = features.to(ScalarType.Float64).cpu();
        var mean = x.mean([0]);
        var centered = x - mean;
        var cov = centered.t().matmul(centered).div(n - 1);
        return new FeatureStatistics(mean, cov, n);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Mean.Dispose();
        Covariance.Dispose();
    }
}
