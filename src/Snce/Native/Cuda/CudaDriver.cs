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

    const int AttrComputeCapabilityMajor = 75, AttrComputeCapabilityMinor = 76;

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

    /// <summary>Makes the device's primary context (the one libtorch uses) current on this thread.</summary>
    public static void UsePrimaryContext(int device)
    {
        Check(cuInit(0), "cuInit");
        Check(cuDeviceGet(out var dev, device), "cuDeviceGet");
        Check(cuDevicePrimaryCtxRetain(out var ctx, dev), "cuDevicePrimaryCtxRetain");
        Check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
    }

    /// <summary>(free, total) bytes of the current context's device, as the driver sees them.</summary>
    public static (long Free, long Total) MemoryInfo()
    {
        Check(cuMemGetInfo(out var free, out var total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>Throws with the driver's own text when <paramref name="result"/> is not CUDA_SUCCESS.</summary>
    public static void Check(int result, string call)
    {
        if (result == 0) return;
        var text = cuGetErrorString(result, out var p) == 0 && p != 0 ? Marshal.PtrToStringUTF8(p) : null;
        throw new InvalidOperationException($"{call} failed: CUDA error {result} ({text ?? "unknown"})");
    }
}
