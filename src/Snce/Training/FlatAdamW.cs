using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>AdamW hyper-parameters (the learning rate comes from the schedule each step).</summary>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay (LlamaGen: 0.95).</param>
/// <param name="Eps">Denominator ε.</param>
/// <param name="WeightDecay">Decoupled weight decay λ of the decay group (the other group gets 0).</param>
/// <param name="MaxGradNorm">Clip the global gradient L2 norm to this; 0 = no clipping.</param>
public sealed record AdamWOptions(
    [property: JsonPropertyName("beta1")] double Beta1 = 0.9,
    [property: JsonPropertyName("beta2")] double Beta2 = 0.95,
    [property: JsonPropertyName("eps")] double Eps = 1e-8,
    [property: JsonPropertyName("weight_decay")] double WeightDecay = 0.05,
    [property: JsonPropertyName("max_grad_norm")] double MaxGradNorm = 1.0)
{
    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentException($"Adam betas must be in [0, 1) (got {Beta1}, {Beta2})");
        if (!(Eps > 0)) throw new ArgumentException($"Adam ε must be > 0 (got {Eps})");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"weight decay must be ≥ 0 (got {WeightDecay})");
        if (!(MaxGradNorm >= 0)) throw new ArgumentException($"max grad norm must be ≥ 0 (got {MaxGradNorm}; 0 = no clipping)");
    }
}

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019) over <see cref="FlatParameters"/>: one update is ~10 kernels over the
/// whole flat buffer, whatever the number of parameters (two fused kernels on CUDA); no host synchronization. Same arithmetic as
/// TorchSharp's/PyTorch's AdamW: p ← p·(1 − lr·λ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε).
/// </summary>
public sealed class FlatAdamW : IDisposable
{
    readonly FlatParameters flat;
    readonly AdamWOptions options;

    /// <summary>Zero moments on the parameters' device.</summary>
    public FlatAdamW(FlatParameters flat, AdamWOptions options)
    {
        options.Validate();
        (this.flat, this.options) = (flat, options);
        ExpAvg = zeros(flat.Size, dtype: ScalarType.Float32, device: flat.Master.device);
        ExpAvgSq = zeros(flat.Size, dtype: ScalarType.Float32, device: flat.Master.device);
    }

    /// <summary>First moments m (flat fp32).</summary>
    public Tensor ExpAvg { get; }

    /// <summary>Second moments v (flat fp32).</summary>
    public Tensor ExpAvgSq { get; }

    /// <summary>Updates taken so far (t).</summary>
    public long Steps { get; set; }

    /// <summary>
    /// Clips the gradient (when configured), applies one update with learning rate <paramref name="lr"/> and then
    /// updates <paramref name="ema"/> (when given; it must track <see cref="FlatParameters.Master"/>). On CUDA, while
    /// <see cref="FusedOptimizer.Enabled"/>, all of it runs as two fused kernels (Fused/AdamWKernels.cu) that leave the
    /// gradient buffer unclipped; elsewhere, as libtorch ops. Returns the gradient's global L2 norm before clipping
    /// (a device scalar; reading it syncs).
    /// </summary>
    public Tensor Step(double lr, Ema? ema = null)
    {
        if (ema is not null && !ReferenceEquals(ema.Source, flat.Master))
            throw new ArgumentException("the EMA handed to FlatAdamW.Step must track the flat master weights");
        if (Fused.AdamWKernels.For(flat) is { } launcher)
        {
            using var scope = NewDisposeScope();                 // the partial sums; freed stream-ordered after the kernels
            using var noGrad = no_grad();
            Steps++;
            return Fused.AdamWKernels.Step(flat, ExpAvg, ExpAvgSq, ema, options, Steps, lr, launcher).MoveToOuterDisposeScope();
        }
        var norm = LibtorchStep(lr);
        ema?.Update();
        return norm;
    }

    Tensor LibtorchStep(double lr)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var g = flat.Grads.dtype == ScalarType.Float32 ? flat.Grads : flat.Grads.to_type(ScalarType.Float32);
        var norm = g.norm();
        if (options.MaxGradNorm > 0)
            g.mul_((options.MaxGradNorm / (norm + 1e-6)).clamp_max_(1.0));
        Steps++;
        var bc1 = 1 - Math.Pow(options.Beta1, Steps);
        var bc2 = 1 - Math.Pow(options.Beta2, Steps);
        var p = flat.Master;
        if (options.WeightDecay > 0 && flat.DecayElements > 0)
            p.narrow(0, 0, flat.DecayElements).mul_(1 - lr * options.WeightDecay);
        ExpAvg.mul_(options.Beta1).add_(g, alpha: 1 - options.Beta1);
        ExpAvgSq.mul_(options.Beta2).addcmul_(g, g, value: 1 - options.Beta2);
        var denom = ExpAvgSq.sqrt().div_(Math.Sqrt(bc2)).add_(options.Eps);
        p.addcdiv_(ExpAvg, denom, value: -lr / bc1);
        flat.SyncValuesFromMaster();
        return norm.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        ExpAvg.Dispose();
        ExpAvgSq.Dispose();
    }
}
