using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// RMSNorm (Zhang &amp; Sennrich 2019): y = x / sqrt(mean(x²) + ε) · g. The statistics are computed in fp32
/// whatever the weight dtype (bf16 training), then cast back. On CUDA one fused kernel does it (forward and backward;
/// <see cref="Fused.FusedBlockOps"/>); on the CPU the libtorch ops below.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double eps;
    // Named as its state-dict key.
    readonly Parameter weight;

    /// <summary>A norm over the last dimension of size <paramref name="dim"/>, gain initialized to 1.</summary>
    public RmsNorm(long dim, double eps, Device? device = null) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(ones(dim, device: device));
        RegisterComponents();
    }

    /// <summary>x [..., dim] → same shape and dtype.</summary>
    public override Tensor forward(Tensor x)
    {
        if (Fused.BlockKernels.For(x) is { } launcher && Fused.FusedBlockOps.Takes(x, weight))
            return Fused.FusedBlockOps.RmsNorm(x, weight, eps, launcher);
        using var scope = NewDisposeScope();
        var xf = x.to_type(ScalarType.Float32);
        var y = xf * xf.pow(2).mean([-1], keepdim: true).add_(eps).rsqrt_();
        return (y.to_type(x.dtype) * weight).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) weight.Dispose();
        base.Dispose(disposing);
    }
}
