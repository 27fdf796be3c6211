using Snce.Native.Cuda;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Snce.Models.Fused;

/// <summary>
/// The block kernels as autograd functions. Each forward runs one kernel (no grad recorded inside), each backward
/// one kernel plus, for RMSNorm, a sum over per-block partials. The libtorch formulas they replace are in
/// <see cref="RmsNorm"/>, <see cref="Rotary2d"/> and <see cref="SwiGlu"/>; tests compare both.
/// </summary>
/// <remarks>
/// Memory: backward runs on libtorch's autograd thread, outside the caller's dispose scopes. Everything it makes is
/// freed by its own scope, the incoming gradients and unpacked saved tensors are disposed when read, and what it
/// returns is handed to <see cref="BlockKernels.Returned"/> (disposed at the next backward on that thread), so no
/// tensor waits for the GC.
/// </remarks>
internal static class FusedBlockOps
{
    /// <summary>RMSNorm over the last dimension: x [..., d], weight [d] (same dtype) → [..., d].</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps, IKernelLauncher<BlockKernels.Args> launcher) => FusedRmsNorm.apply(x, weight, eps, launcher);

    /// <summary>qkv [B, S, 3, H, hd] → (q, k, v) [B, H, S, hd], q and k rotated for slots [start, start+S).</summary>
    public static (Tensor Q, Tensor K, Tensor V) RotaryQkv(Tensor qkv, Tensor cos, Tensor sin, long start, IKernelLauncher<BlockKernels.Args> launcher)
    {
        var o = FusedRotaryQkv.apply(qkv, cos, sin, start, launcher);
        return (o[0], o[1], o[2]);
    }

    /// <summary>gate|value [..., 2h] → silu(gate) ⊙ value [..., h].</summary>
    public static Tensor SwiGluGate(Tensor gv, long hidden, IKernelLauncher<BlockKernels.Args> launcher) => FusedSwiGlu.apply(gv, hidden, launcher);

    /// <summary>Whether the kernels take an RMSNorm of this width and dtypes.</summary>
    public static bool Takes(Tensor x, Tensor weight) => x.dtype == weight.dtype && x.shape[^1] <= BlockKernels.MaxNormDim && weight.is_contiguous();

    internal static nint Ptr(Tensor t) => TensorMemory.DataPointer(t);

    /// <summary>The tensors forward saved (new wrappers, owned by the caller's dispose scope).</summary>
    internal static List<Tensor> Saved(AutogradContext ctx) => ctx.get_saved_variables();
}

internal sealed class FusedRmsNorm : SingleTensorFunction<FusedRmsNorm>
{
    public override string Name => "SnceFusedRmsNorm";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (x, w, eps, launcher) = ((Tensor)vars[0], (Tensor)vars[1], (double)vars[2], (IKernelLauncher<BlockKernels.Args>)vars[3]);
        var xc = x.contiguous();
        var d = x.shape[^1];
        var rows = xc.numel() / d;
        var y = empty_like(xc);
        var rstd = empty(rows, dtype: ScalarType.Float32, device: x.device);
        var a = new BlockKernels.Args { X = FusedBlockOps.Ptr(xc), W = FusedBlockOps.Ptr(w), Y = FusedBlockOps.Ptr(y), Rstd = FusedBlockOps.Ptr(rstd), Rows = rows, Dim = d, Eps = (float)eps };
        launcher.Launch(BlockKernels.Kernel("rmsnorm_fwd", x.dtype), (int)((rows + BlockKernels.Warps - 1) / BlockKernels.Warps), BlockKernels.Threads, ref a);
        ctx.save_for_backward([xc, w, rstd]);
        ctx.save_data("launcher", launcher);
        return y;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        BlockKernels.ReleasePending();
        using var scope = NewDisposeScope();
        var saved = FusedBlockOps.Saved(ctx);
        var (x, w, rstd) = (saved[0], saved[1], saved[2]);
        var launcher = (IKernelLauncher<BlockKernels.Args>)ctx.get_data("launcher");
        var gy = gradOutput.to_type(x.dtype).contiguous();
        var d = x.shape[^1];
        var rows = x.numel() / d;
        var grid = (int)Math.Clamp((rows + BlockKernels.Warps - 1) / BlockKernels.Warps, 1, 1024);
        var rowsPerBlock = (int)((rows + grid - 1) / grid);
        var gx = empty_like(x);
        var partial = empty(grid, d, dtype: ScalarType.Float32, device: x.device);
        var a = new BlockKernels.Args
        {
            X = FusedBlockOps.Ptr(x), W = FusedBlockOps.Ptr(w), Gy = FusedBlockOps.Ptr(gy), Y = FusedBlockOps.Ptr(gx),
            Rstd = FusedBlockOps.Ptr(rstd), Partial = FusedBlockOps.Ptr(partial), Rows = rows, Dim = d, RowsPerBlock = rowsPerBlock,
        };
        launcher.Launch(BlockKernels.Kernel("rmsnorm_bwd", x.dtype), grid, BlockKernels.Threads, ref a);
        var gw = partial.sum(0L, keepdim: false).to_type(w.dtype);   // [grid, d] → [d]
        gradOutput.Dispose();
        return [BlockKernels.Returned(gx), BlockKernels.Returned(gw), null!, null!];
    }
}

internal sealed class FusedRotaryQkv : MultiTensorFunction<FusedRotaryQkv>
{
    public override string Name => "SnceFusedRotaryQkv";

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var (qkv, cos, sin, start, launcher) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (long)vars[3], (IKernelLauncher<BlockKernels.Args>)vars[4]);
        var x = qkv.contiguous();
        var (b, s, h, hd) = (x.shape[0], x.shape[1], x.shape[3], x.shape[4]);
        if (x.shape[2] != 3) throw new ArgumentException($"fused rotary takes the q/k/v projection [B, S, 3, H, d_h], got [{string.Join(", ", x.shape)}]");
        var q = empty(b, h, s, hd, dtype: x.dtype, device: x.device);
        var k = empty_like(q);
        var v = empty_like(q);
        var a = new BlockKernels.Args
        {
            X = FusedBlockOps.Ptr(x), Y = FusedBlockOps.Ptr(q), Y2 = FusedBlockOps.Ptr(k), Y3 = FusedBlockOps.Ptr(v),
            Cos = FusedBlockOps.Ptr(cos), Sin = FusedBlockOps.Ptr(sin), Rows = b, Dim = s, Heads = h, HeadDim = hd, Start = start,
        };
        launcher.Launch(BlockKernels.Kernel("rope_fwd", x.dtype), BlockKernels.ElementwiseGrid(b * s * h * hd / 2), BlockKernels.Threads, ref a);
        ctx.save_for_backward([cos, sin]);
        ctx.save_data("launcher", launcher);
        ctx.save_data("start", start);
        ctx.save_data("shape", x.shape);
        ctx.save_data("dtype", x.dtype);
        return [q, k, v];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
    {
        BlockKernels.ReleasePending();
        using var scope = NewDisposeScope();
        var saved = FusedBlockOps.Saved(ctx);
        var (cos, sin) = (saved[0], saved[1]);
        var launcher = (IKernelLauncher<BlockKernels.Args>)ctx.get_data("launcher");
        var shape = (long[])ctx.get_data("shape");
        var dtype = (ScalarType)ctx.get_data("dtype");
        var g = grads.Select(t => t.to_type(dtype).contiguous()).ToArray();
        var gx = empty(shape, dtype: dtype, device: cos.device);
        var (b, s, h, hd) = (shape[0], shape[1], shape[3], shape[4]);
        var a = new BlockKernels.Args
        {
            Gy = FusedBlockOps.Ptr(g[0]), Gy2 = FusedBlockOps.Ptr(g[1]), Gy3 = FusedBlockOps.Ptr(g[2]), Y = FusedBlockOps.Ptr(gx),
            Cos = FusedBlockOps.Ptr(cos), Sin = FusedBlockOps.Ptr(sin), Rows = b, Dim = s, Heads = h, HeadDim = hd, Start = (long)ctx.get_data("start"),
        };
        launcher.Launch(BlockKernels.Kernel("rope_bwd", dtype), BlockKernels.ElementwiseGrid(b * s * h * hd / 2), BlockKernels.Threads, ref a);
        foreach (var t in grads) t.Dispose();
        return [BlockKernels.Returned(gx), null!, null!, null!, null!];
    }
}

internal sealed class FusedSwiGlu : SingleTensorFunction<FusedSwiGlu>
{
    public override string Name => "SnceFusedSwiGlu";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (gv, hidden, launcher) = ((Tensor)vars[0], (long)vars[1], (IKernelLauncher<BlockKernels.Args>)vars[2]);
        var x = gv.contiguous();
        if (x.shape[^1] != 2 * hidden) throw new ArgumentException($"fused SwiGLU expects a last dimension of 2·{hidden}, got {x.shape[^1]}");
        var shape = x.shape.ToArray();
        shape[^1] = hidden;
        var y = empty(shape, dtype: x.dtype, device: x.device);
        var rows = x.numel() / (2 * hidden);
        var a = new BlockKernels.Args { X = FusedBlockOps.Ptr(x), Y = FusedBlockOps.Ptr(y), Rows = rows, Dim = hidden };
        launcher.Launch(BlockKernels.Kernel("swiglu_fwd", x.dtype), BlockKernels.ElementwiseGrid(rows * hidden), BlockKernels.Threads, ref a);
        ctx.save_for_backward([x]);
        ctx.save_data("launcher", launcher);
        return y;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        BlockKernels.ReleasePending();
        using var scope = NewDisposeScope();
        var x = FusedBlockOps.Saved(ctx)[0];
        var launcher = (IKernelLauncher<BlockKernels.Args>)ctx.get_data("launcher");
        var gy = gradOutput.to_type(x.dtype).contiguous();
        var hidden = x.shape[^1] / 2;
        var rows = x.numel() / (2 * hidden);
        var gx = empty_like(x);
        var a = new BlockKernels.Args { X = FusedBlockOps.Ptr(x), Gy = FusedBlockOps.Ptr(gy), Y = FusedBlockOps.Ptr(gx), Rows = rows, Dim = hidden };
        launcher.Launch(BlockKernels.Kernel("swiglu_bwd", x.dtype), BlockKernels.ElementwiseGrid(rows * hidden), BlockKernels.Threads, ref a);
        gradOutput.Dispose();
        return [BlockKernels.Returned(gx), null!, null!];
    }
}
