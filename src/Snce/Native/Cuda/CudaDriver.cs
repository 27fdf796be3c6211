using System.Runtime.InteropServices;
using System.Text;

namespace Snce.Native.Cuda;

/// <summary>
/// The few CUDA driver API calls (libcuda.so.1) that libtorch does not expose through TorchSharp:
/// device names and memory, compute capability, and launching run-time compiled kernels.
/// Reference: CUDA Driver API, https://docs.nvidia.com/cuda/cuda-driver-api/.
/// </summary>
public static partial class CudaDriver
{
    const string Lib = "libcuda.so.1";

    /// <summary>A CUDA device as the driver describes it.</summary>
    public sealed record DeviceInfo(int Index, string Name, long TotalMemoryBytes, int ComputeMajor, int ComputeMinor)
    {
        /// <summary>bf16 tensor-core math exists from compute capability 8.0 (Ampere) on.</summary>
        public bool SupportsBf16 => ComputeMajor >= 8;
    }

    [LibraryImport(Lib)] private static partial int cuInit(uint flags);
    [LibraryImport(Lib)] private static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] private static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] private static unsafe partial int cuDeviceGetName(byte* name, int len, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] private static partial int cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Lib)] private static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib)] private static partial int cuDevicePrimaryCtxRetain(out nint ctx, int device);
    [LibraryImport(Lib)] private static partial int cuCtxSetCurrent(nint ctx);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] private static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Lib)] private static partial int cuGetErrorString(int error, out nint text);
    [LibraryImport(Lib)] private static unsafe partial int cuModuleLoadData(out nint module, byte* image);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int cuModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Lib)] private static unsafe partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedMemBytes, nint stream, void** kernelParams, void** extra);
    [LibraryImport(Lib)] private static partial int cuFuncGetAttribute(out int value, int attribute, nint function);
    [LibraryImport(Lib)] private static partial int cuOccupancyMaxActiveBlocksPerMultiprocessor(out int blocks, nint function, int blockSize, nuint dynamicSharedBytes);
    [LibraryImport(Lib)] private static partial int cuCtxSynchronize();
    [LibraryImport(Lib)] private static partial int cuProfilerStart();
    [LibraryImport(Lib)] private static partial int cuProfilerStop();

    const int AttrComputeCapabilityMajor = 75, AttrComputeCapabilityMinor = 76, AttrMultiprocessorCount = 16;
    static readonly Dictionary<int, nint> PrimaryContexts = [];

    /// <summary>True when libcuda.so.1 loads and cuInit succeeds.</summary>
    public static bool Available()
    {
        try { return cuInit(0) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>All devices the driver sees (respecting CUDA_VISIBLE_DEVICES); empty without a driver.</summary>
    public static unsafe IReadOnlyList<DeviceInfo> Devices()
    {
        if (!Available()) return [];
        Check(cuDeviceGetCount(out var count), "cuDeviceGetCount");
        var list = new List<DeviceInfo>(count);
        var name = stackalloc byte[256];
        for (var i = 0; i < count; i++)
        {
            Check(cuDeviceGet(out var dev, i), "cuDeviceGet");
            Check(cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
            Check(cuDeviceTotalMem(out var total, dev), "cuDeviceTotalMem");
            Check(cuDeviceGetAttribute(out var major, AttrComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
            Check(cuDeviceGetAttribute(out var minor, AttrComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
            list.Add(new DeviceInfo(i, Marshal.PtrToStringUTF8((nint)name) ?? "?", (long)total, major, minor));
        }
        return list;
    }

    /// <summary>The CUDA ordinal of a TorchSharp device: "cuda" without an index is device 0, as libtorch reads it.</summary>
    public static int Ordinal(TorchSharp.torch.Device device) => device.index < 0 ? 0 : device.index;

    /// <summary>
    /// Makes the device's primary context (the one libtorch uses) current on this thread. The context is
    /// retained once per device and process (it lives as long as the process), so calling this often is cheap.
    /// </summary>
    public static void UsePrimaryContext(int device)
    {
        nint ctx;
        lock (PrimaryContexts)
        {
            if (!PrimaryContexts.TryGetValue(device, out ctx))
            {
                Check(cuInit(0), "cuInit");
                Check(cuDeviceGet(out var dev, device), "cuDeviceGet");
                Check(cuDevicePrimaryCtxRetain(out ctx, dev), "cuDevicePrimaryCtxRetain");
                PrimaryContexts[device] = ctx;
            }
        }
        Check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
    }

    /// <summary>(major, minor) compute capability of a device, e.g. (9, 0) for an H100/H200.</summary>
    public static (int Major, int Minor) ComputeCapability(int device)
    {
        Check(cuInit(0), "cuInit");
        Check(cuDeviceGet(out var dev, device), "cuDeviceGet");
        Check(cuDeviceGetAttribute(out var major, AttrComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
        Check(cuDeviceGetAttribute(out var minor, AttrComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
        return (major, minor);
    }

    /// <summary>Number of streaming multiprocessors of a device.</summary>
    public static int MultiprocessorCount(int device)
    {
        Check(cuInit(0), "cuInit");
        Check(cuDeviceGet(out var dev, device), "cuDeviceGet");
        Check(cuDeviceGetAttribute(out var n, AttrMultiprocessorCount, dev), "cuDeviceGetAttribute");
        return n;
    }

    /// <summary>Loads a PTX (or cubin) image into the current context; returns the CUmodule.</summary>
    public static unsafe nint LoadModule(ReadOnlySpan<byte> nulTerminatedImage)
    {
        if (nulTerminatedImage.IsEmpty || nulTerminatedImage[^1] != 0) throw new ArgumentException("a PTX image must end with a NUL byte", nameof(nulTerminatedImage));
        fixed (byte* p = nulTerminatedImage)
        {
            Check(cuModuleLoadData(out var module, p), "cuModuleLoadData");
            return module;
        }
    }

    /// <summary>The CUfunction of an <c>extern "C"</c> kernel in a loaded module.</summary>
    public static nint GetFunction(nint module, string name)
    {
        Check(cuModuleGetFunction(out var f, module, name), $"cuModuleGetFunction({name})");
        return f;
    }

    /// <summary>
    /// Queues a 1-D launch of <paramref name="function"/> on stream 0 (libtorch's default stream, so it runs after
    /// the torch ops queued before it and before those queued after), with one kernel parameter passed by value.
    /// Launch errors (bad configuration) throw here; faults inside the kernel surface at the next synchronization.
    /// </summary>
    public static unsafe void Launch<T>(nint function, uint grid, uint block, uint sharedBytes, ref T parameter) where T : unmanaged
    {
        fixed (T* p = &parameter)
        {
            void* arg = p;
            Check(cuLaunchKernel(function, grid, 1, 1, block, 1, 1, sharedBytes, 0, &arg, null), "cuLaunchKernel");
        }
    }

    /// <summary>Registers per thread, local (spill) bytes per thread and static shared bytes of a kernel.</summary>
    public static (int Registers, int LocalBytes, int SharedBytes) FunctionResources(nint function)
    {
        const int SharedSizeBytes = 1, LocalSizeBytes = 3, NumRegs = 4;
        Check(cuFuncGetAttribute(out var regs, NumRegs, function), "cuFuncGetAttribute");
        Check(cuFuncGetAttribute(out var local, LocalSizeBytes, function), "cuFuncGetAttribute");
        Check(cuFuncGetAttribute(out var shared, SharedSizeBytes, function), "cuFuncGetAttribute");
        return (regs, local, shared);
    }

    /// <summary>How many blocks of <paramref name="blockSize"/> threads fit on one multiprocessor at once.</summary>
    public static int MaxActiveBlocksPerMultiprocessor(nint function, int blockSize)
    {
        Check(cuOccupancyMaxActiveBlocksPerMultiprocessor(out var n, function, blockSize, 0), "cuOccupancyMaxActiveBlocksPerMultiprocessor");
        return n;
    }

    /// <summary>Waits for all work in the current context (surfaces asynchronous kernel faults).</summary>
    public static void Synchronize() => Check(cuCtxSynchronize(), "cuCtxSynchronize");

    /// <summary>
    /// Marks the start or end of the region a profiler started with <c>--profile-from-start off</c> records (Nsight
    /// Compute, Nsight Systems); outside a profiler a no-op.
    /// </summary>
    public static void ProfilerRegion(bool start) => Check(start ? cuProfilerStart() : cuProfilerStop(), start ? "cuProfilerStart" : "cuProfilerStop");

    /// <summary>(free, total) bytes of the current context's device, as the driver sees them.</summary>
    public static (long Free, long Total) MemoryInfo()
    {
        Check(cuMemGetInfo(out var free, out var total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>Bytes in use on a CUDA device (all processes, libtorch's cached blocks included): total minus free, read in its primary context.</summary>
    public static long MemoryInUse(TorchSharp.torch.Device device)
    {
        UsePrimaryContext(Ordinal(device));
        var (free, total) = MemoryInfo();
        return total - free;
    }

    /// <summary>Throws with the driver's own text when <paramref name="result"/> is not CUDA_SUCCESS.</summary>
    public static void Check(int result, string call)
    {
        if (result == 0) return;
        var text = cuGetErrorString(result, out var p) == 0 && p != 0 ? Marshal.PtrToStringUTF8(p) : null;
        throw new InvalidOperationException($"{call} failed: CUDA error {result} ({text ?? "unknown"})");
    }
}
