using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// Exponential moving average of the flat fp32 master weights: e ← d·e + (1 − d)·w after each step,
/// one kernel pair. Starts equal to the weights. Samplers use these weights by default.
/// </summary>
public sealed class Ema : IDisposable
{
    readonly Tensor source;

    /// <summary>Tracks <paramref name="source"/> (a flat fp32 buffer) with decay <paramref name="decay"/> ∈ [0, 1).</summary>
    public Ema(Tensor source, double decay)
    {
        if (!(decay >= 0 && decay < 1)) throw new ArgumentException($"EMA decay must be in [0, 1) (got {decay})");
        this.source = source;
        Decay = decay;
        Values = source.detach().clone();
    }

    /// <summary>d.</summary>
    public double Decay { get; }

    /// <summary>The averaged weights (flat fp32, laid out like the source).</summary>
    public Tensor Values { get; }

    /// <summary>The flat fp32 buffer tracked (the fused optimizer step checks it is the master weights).</summary>
    internal Tensor Source => source;

    /// <summary>e ← d·e + (1 − d)·w.</summary>
    public void Update()
    {
        using var noGrad = no_grad();
        Values.mul_(Decay).add_(source, alpha: 1 - Decay);
    }

    /// <inheritdoc/>
    public void Dispose() => Values.Dispose();
}
