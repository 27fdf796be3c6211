using System.Reflection;
using System.Text.Json.Serialization;
using Snce.Native;
using Snce.Native.Cuda;
using TorchSharp;

namespace Snce.Diagnostics;

/// <summary>One GPU as reported by <c>snce info</c>.</summary>
public sealed record GpuReport(int Index, string Name, long MemoryBytes, string ComputeCapability, bool Bf16);

/// <summary>What Snce runs on: versions, native libraries, threads, CUDA devices.</summary>
public sealed record SystemReport(
    string SnceVersion,
    [property: JsonPropertyName("torchsharp_version")] string TorchSharpVersion,
    [property: JsonPropertyName("libtorch_version")] string LibTorchVersion,
    [property: JsonPropertyName("libtorch_dir")] string LibTorchDir,
    [property: JsonPropertyName("libtorch_source")] string LibTorchSource,
    [property: JsonPropertyName("libtorchsharp_path")] string LibTorchSharpPath,
    bool GlibcxxFixApplied,
    int CpuThreads,
    bool CudaAvailable,
    IReadOnlyList<GpuReport> Gpus,
    bool Bf16Supported,
    string Device)
{
    /// <summary>Collects the report for the resolved <paramref name="device"/> (the native runtime must be loaded).</summary>
    public static SystemReport Collect(torch.Device device)
    {
        var status = TorchRuntime.Status ?? throw new InvalidOperationException("TorchRuntime.EnsureLoaded must run before SystemReport.Collect");
        var cuda = ComputeDevice.CudaAvailable();
        var gpus = cuda
            ? CudaDriver.Devices().Select(d => new GpuReport(d.Index, d.Name, d.TotalMemoryBytes, $"{d.ComputeMajor}.{d.ComputeMinor}", d.SupportsBf16)).ToList()
            : [];
        // CPU kernels in libtorch implement bf16 everywhere; on CUDA it needs compute capability >= 8.0.
        var bf16 = device.type == DeviceType.CUDA ? gpus.FirstOrDefault(g => g.Index == device.index)?.Bf16 ?? gpus.Any(g => g.Bf16) : true;
        return new SystemReport(
            SnceVersion: VersionOf(typeof(SystemReport).Assembly),
            TorchSharpVersion: VersionOf(typeof(torch).Assembly),
            LibTorchVersion: status.LibTorchVersion,
            LibTorchDir: status.LibTorchDir,
            LibTorchSource: status.LibTorchSource,
            LibTorchSharpPath: status.LibTorchSharpPath,
            GlibcxxFixApplied: status.GlibcxxFixApplied,
            CpuThreads: torch.get_num_threads(),
            CudaAvailable: cuda,
            Gpus: gpus,
            Bf16Supported: bf16,
            Device: device.ToString());
    }

    static string VersionOf(Assembly a) =>
        a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? a.GetName().Version?.ToString() ?? "unknown";
}
