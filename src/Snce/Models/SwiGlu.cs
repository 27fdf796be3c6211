using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>SwiGLU feed-forward (Shazeer 2020): w2(silu(x·W1) ⊙ x·W3), with W1 and W3 fused into one matmul.</summary>
public sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
    readonly long hidden;
    // Named as their state-dict keys.
    readonly Linear w13, w2;

    /// <summary>d → 2h (gate and value) and h → d, no biases, N(0, std²) init.</summary>
    public SwiGlu(TransformerConfig c, Device? device = null) : base(nameof(SwiGlu))
    {
        hidden = c.FfnHidden;
        w13 = nn.Linear(c.Dim, 2 * hidden, hasBias: false, device: device);
        w2 = nn.Linear(hidden, c.Dim, hasBias: false, device: device);
        using (no_grad())
        {
            nn.init.normal_(w13.weight, 0, c.InitStd);
            nn.init.normal_(w2.weight, 0, c.InitStd);
        }
        RegisterComponents();
    }

    /// <summary>x [..., d] → [..., d].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gv = w13.forward(x);
        var y = Fused.BlockKernels.For(gv) is { } launcher
            ? Fused.FusedBlockOps.SwiGluGate(gv, hidden, launcher)                       // one kernel each way on CUDA
            : nn.functional.silu(gv.narrow(-1, 0, hidden)) * gv.narrow(-1, hidden, hidden);
        return w2.forward(y).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { w13.Dispose(); w2.Dispose(); }
        base.Dispose(disposing);
    }
}
