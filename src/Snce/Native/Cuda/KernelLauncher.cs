using static TorchSharp.torch;

namespace Snce.Native.Cuda;

/// <summary>
/// Queues a kernel of one NVRTC module whose kernels all take one by-value parameter struct <typeparamref name="TArgs"/>:
/// on a GPU through the driver API (<see cref="CudaLauncher{TArgs}"/>), or in tests through a CPU emulation of the kernels.
/// </summary>
internal interface IKernelLauncher<TArgs> where TArgs : unmanaged
{
    /// <summary>Queues <paramref name="kernel"/> with <paramref name="grid"/> blocks of <paramref name="block"/> threads.</summary>
    void Launch(string kernel, int grid, int block, ref TArgs args);
}

/// <summary>Launches one module's kernels on a CUDA device (compiled once per process, loaded once per device).</summary>
internal sealed class CudaLauncher<TArgs> : IKernelLauncher<TArgs> where TArgs : unmanaged
{
    CudaLauncher(CudaModule module) => Module = module;

    /// <summary>The compiled module (for reporting registers, occupancy, options).</summary>
    public CudaModule Module { get; }

    /// <summary>The launcher of module <paramref name="name"/> for a CUDA device (no index: device 0), or null when NVRTC or the driver is missing (the libtorch path then runs).</summary>
    public static CudaLauncher<TArgs>? OrNull(string name, string source, Device device)
    {
        var d = CudaDriver.Ordinal(device);
        return CudaModule.LauncherOrNull(d, () => new CudaLauncher<TArgs>(CudaModule.Get(name, source, d)));
    }

    /// <summary>
    /// The same, for callers that were asked for the CUDA path: throws <see cref="SnceSetupException"/> naming why
    /// NVRTC or the driver is missing.
    /// </summary>
    public static CudaLauncher<TArgs> OrThrow(string name, string source, Device device)
    {
        var d = CudaDriver.Ordinal(device);
        return CudaModule.LauncherOrThrow(d, () => new CudaLauncher<TArgs>(CudaModule.Get(name, source, d)));
    }

    /// <inheritdoc/>
    public void Launch(string kernel, int grid, int block, ref TArgs args) => Module.Launch(kernel, grid, block, ref args);
}
