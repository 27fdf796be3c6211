using System.Runtime.InteropServices;
using Snce.Native;
using Snce.Native.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Training.Fused;

/// <summary>
/// The fused optimizer step (AdamWKernels.cu): <c>adamw_sumsq</c> writes per-block sums of g², <c>adamw_update</c>
/// reduces them to the norm on the device and applies clip, AdamW, the bf16 weight copy and the EMA in one pass.
/// Used on CUDA while <see cref="FusedOptimizer.Enabled"/>, never on the CPU, where <see cref="FlatAdamW"/>'s libtorch
/// ops stay (and with them the bit-exact CPU resume).
/// </summary>
internal static class AdamWKernels
{
    /// <summary>Threads per block (a multiple of 32, at most 1024: the kernels' block_sum).</summary>
    public const int Threads = 256;
    /// <summary>Most blocks per launch (16 per SM of an H200): the size of the partial-sum buffer the update pass reads.</summary>
    public const int MaxBlocks = 132 * 16;

    /// <summary>Mirror of <c>struct AdamWArgs</c> in AdamWKernels.cu: 8 pointers, 2 longs, 11 floats and an int; 128 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Args
    {
        public nint Grads, Master, ExpAvg, ExpAvgSq, Ema, Values, Partial, Norm;
        public long N, DecayElements;
        public float Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Eps, DecayFactor, StepSize, SqrtBc2, MaxGradNorm, EmaDecay, OneMinusEmaDecay;
        public int Partials;
    }

    /// <summary>The kernel source, embedded in the assembly.</summary>
    public static string Source { get; } = CudaModule.EmbeddedSource("AdamWKernels.cu");

    static readonly AsyncLocal<IKernelLauncher<Args>?> Override = new();

    /// <summary>Tests: route every optimizer step of this async flow through <paramref name="launcher"/> (null: back to the policy).</summary>
    public static void UseLauncher(IKernelLauncher<Args>? launcher) => Override.Value = launcher;

    /// <summary>The launcher for a step over <paramref name="flat"/>, or null when the libtorch path should run.</summary>
    public static IKernelLauncher<Args>? For(FlatParameters flat)
    {
        if (flat.Grads.dtype is not (ScalarType.Float32 or ScalarType.BFloat16) || flat.Grads.dtype != flat.Values.dtype) return null;
        if (Override.Value is { } l) return l;
        var device = flat.Master.device;
        if (!FusedOptimizer.Enabled || device.type != DeviceType.CUDA) return null;
        return CudaLauncher<Args>.OrNull("snce_adamw", Source, device);
    }

    /// <summary>Kernel name for the gradient dtype: <c>name_f32</c> or <c>name_bf16</c>.</summary>
    public static string Kernel(string name, ScalarType dtype) => CudaModule.KernelFor(name, dtype, "the optimizer kernels' gradients");

    /// <summary>
    /// One step t (already counted) with learning rate <paramref name="lr"/>: updates the master weights, the moments,
    /// the model's weights (when separate) and <paramref name="ema"/> (when given) in place. Returns ‖g‖₂ before
    /// clipping as a device scalar. The gradient buffer is left unclipped (the libtorch path clips fp32 gradients in
    /// place; nothing reads them after the step).
    /// </summary>
    public static Tensor Step(FlatParameters flat, Tensor expAvg, Tensor expAvgSq, Ema? ema, AdamWOptions o, long t, double lr, IKernelLauncher<Args> launcher)
    {
        var n = flat.Size;
        var grid = (int)Math.Clamp((n + Threads - 1) / Threads, 1, MaxBlocks);
        var device = flat.Master.device;
        var partial = empty(grid, dtype: ScalarType.Float32, device: device);
        var norm = empty([], dtype: ScalarType.Float32, device: device);
        var bc1 = 1 - Math.Pow(o.Beta1, t);
        var bc2 = 1 - Math.Pow(o.Beta2, t);
        var decays = o.WeightDecay > 0 && flat.DecayElements > 0;
        var a = new Args
        {
            Grads = Ptr(flat.Grads), Master = Ptr(flat.Master), ExpAvg = Ptr(expAvg), ExpAvgSq = Ptr(expAvgSq),
            Ema = ema is null ? 0 : Ptr(ema.Values), Values = flat.HasSeparateMaster ? Ptr(flat.Values) : 0,
            Partial = Ptr(partial), Norm = Ptr(norm), N = n, DecayElements = flat.DecayElements,
            // Scalars rounded to fp32 from the same doubles the libtorch path hands its ops.
            Beta1 = (float)o.Beta1, OneMinusBeta1 = (float)(1 - o.Beta1), Beta2 = (float)o.Beta2, OneMinusBeta2 = (float)(1 - o.Beta2),
            Eps = (float)o.Eps, DecayFactor = decays ? (float)(1 - lr * o.WeightDecay) : 1f, StepSize = (float)(lr / bc1),
            SqrtBc2 = (float)Math.Sqrt(bc2), MaxGradNorm = (float)o.MaxGradNorm,
            EmaDecay = ema is null ? 0f : (float)ema.Decay, OneMinusEmaDecay = ema is null ? 0f : (float)(1 - ema.Decay),
            Partials = grid,
        };
        var dtype = flat.Grads.dtype;
        launcher.Launch(Kernel("adamw_sumsq", dtype), grid, Threads, ref a);
        launcher.Launch(Kernel("adamw_update", dtype), grid, Threads, ref a);
        return norm;
    }

    static nint Ptr(Tensor t)
    {
        if (!t.is_contiguous()) throw new ArgumentException("the optimizer kernels take contiguous flat buffers");
        return TensorMemory.DataPointer(t);
    }
}
