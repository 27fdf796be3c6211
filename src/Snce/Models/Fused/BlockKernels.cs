using System.Runtime.InteropServices;
using Snce.Native;
using Snce.Native.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Models.Fused;

/// <summary>
/// The fused transformer-block kernels (BlockKernels.cu: RMSNorm, rotary on the fused q/k/v projection, SwiGLU gate,
/// each forward and backward) and the policy that picks them: on CUDA while <see cref="FusedBlocks.Enabled"/>, never on the CPU, where the libtorch path stays (and with it the bit-exact CPU resume).
/// </summary>
internal static class BlockKernels
{
    /// <summary>Rows per RMSNorm block in the forward kernel (one warp each); the kernels' BLK_WARPS.</summary>
    public const int Warps = 8;
    /// <summary>Largest RMSNorm width the backward kernel's shared accumulators take (BLK_MAX_DIM).</summary>
    public const int MaxNormDim = 1024;
    /// <summary>Threads per block for every kernel.</summary>
    public const int Threads = Warps * 32;

    /// <summary>Mirror of <c>struct BlockArgs</c> in BlockKernels.cu: 13 pointers, 5 longs, a float and an int; 152 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Args
    {
        public nint X, W, Gy, Gy2, Gy3, Y, Y2, Y3, Rstd, Partial, Cos, Sin, Unused;
        public long Rows, Dim, Heads, HeadDim, Start;
        public float Eps;
        public int RowsPerBlock;
    }

    /// <summary>The kernel source, embedded in the assembly.</summary>
    public static string Source { get; } = CudaModule.EmbeddedSource("BlockKernels.cu");

    static readonly AsyncLocal<IKernelLauncher<Args>?> Override = new();

    /// <summary>Tests: route every fused-capable op of this async flow through <paramref name="launcher"/> (null: back to the policy).</summary>
    public static void UseLauncher(IKernelLauncher<Args>? launcher) => Override.Value = launcher;

    /// <summary>The launcher for ops on <paramref name="x"/>, or null when the libtorch path should run.</summary>
    public static IKernelLauncher<Args>? For(Tensor x)
    {
        if (x.dtype is not (ScalarType.Float32 or ScalarType.BFloat16)) return null;
        if (Override.Value is { } l) return l;
        if (!FusedBlocks.Enabled || x.device.type != DeviceType.CUDA) return null;
        return CudaLauncher<Args>.OrNull("snce_blocks", Source, x.device);
    }

    /// <summary>Kernel name for a dtype: <c>name_f32</c> or <c>name_bf16</c>.</summary>
    public static string Kernel(string name, ScalarType dtype) => CudaModule.KernelFor(name, dtype, "the block kernels");

    /// <summary>Blocks for a grid-stride elementwise kernel over <paramref name="total"/> items.</summary>
    public static int ElementwiseGrid(long total) => (int)Math.Clamp((total + Threads - 1) / Threads, 1, 132 * 16);

    // Tensors a backward returns must outlive the call (libtorch takes them after it returns), so they are
    // disposed at the next backward call on the same thread (the autograd engine runs a device's backward
    // functions one after another on one thread) instead of waiting for the GC's finalizer.
    [ThreadStatic] static List<Tensor>? pending;

    /// <summary>Disposes what earlier backward calls on this thread returned.</summary>
    public static void ReleasePending()
    {
        if (pending is null) return;
        foreach (var t in pending) t.Dispose();
        pending.Clear();
    }

    /// <summary>Keeps <paramref name="t"/> (out of every dispose scope) until the next <see cref="ReleasePending"/> on this thread.</summary>
    public static Tensor Returned(Tensor t)
    {
        (pending ??= []).Add(t.DetachFromDisposeScope());
        return t;
    }
}
