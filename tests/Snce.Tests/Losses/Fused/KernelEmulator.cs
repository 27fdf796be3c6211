using Snce.Native.Cuda;
using Snce.Losses.Fused;
using Snce.Tests.Support;

namespace Snce.Tests.Losses.Fused;

/// <summary>
/// The fused loss's CUDA kernel (the exact source NVRTC compiles) run on the CPU by <see cref="KernelEmulation"/>.
/// Launches go through the same <see cref="IKernelLauncher"/> seam as on the GPU, with CPU tensors' pointers;
/// misaligned vector accesses are counted.
/// </summary>
sealed class KernelEmulator : IKernelLauncher<FusedKernelRows.RowArgs>
{
    readonly KernelEmulation emulation;

    public int Misaligned { get; private set; }
    public List<string> Kernels => emulation.Launched;

    KernelEmulator(KernelEmulation emulation) => this.emulation = emulation;

    /// <summary>A fresh launcher over the (once per process) compiled emulation, or null with the reason (no g++).</summary>
    public static KernelEmulator? Create(out string why) =>
        KernelEmulation.Load("kernel", FusedKernelRows.Source, "the kernel source", Path.Combine("Losses", "Fused", "Emulation", "harness.cpp"), "emu_launch", out why)
            is { } e ? new KernelEmulator(e) : null;

    public void Launch(string kernel, int grid, int block, ref FusedKernelRows.RowArgs args) =>
        Misaligned += emulation.Launch(kernel, grid, block, ref args);
}
