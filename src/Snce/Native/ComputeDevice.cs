using TorchSharp;

namespace Snce.Native;

/// <summary>What the user asked for with <c>--device</c>: auto, cpu, cuda or cuda:N.</summary>
public sealed record DeviceRequest(string Kind, int? Index)
{
    /// <summary>The accepted spellings, for help and error text.</summary>
    public const string Allowed = "auto, cpu, cuda, cuda:N";

    /// <summary>Parses auto|cpu|cuda|cuda:N; throws <see cref="ArgumentException"/> naming the allowed values.</summary>
    public static DeviceRequest Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t is "auto" or "cpu" or "cuda") return new DeviceRequest(t, null);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t[5..], out var n) && n >= 0)
            return new DeviceRequest("cuda", n);
        throw new ArgumentException($"unknown device '{text}'; use one of {Allowed}");
    }

    /// <inheritdoc/>
    public override string ToString() => Index is { } i ? $"{Kind}:{i}" : Kind;
}

/// <summary>Turns a <see cref="DeviceRequest"/> into a torch device, loading the native runtime that it needs.</summary>
public static class ComputeDevice
{
    /// <summary>
    /// Loads libtorch (a PyTorch install's when CUDA is asked for or an NVIDIA driver is present) and returns the device.
    /// Throws <see cref="SnceSetupException"/> with a remedy when CUDA is asked for and not available.
    /// </summary>
    public static torch.Device Resolve(DeviceRequest request, string? libTorchDir = null)
    {
        var wantsCuda = request.Kind == "cuda";
        var status = TorchRuntime.EnsureLoaded(libTorchDir, findPyTorch: wantsCuda || (request.Kind == "auto" && LibTorchLocator.NvidiaDriverPresent()));
        if (request.Kind == "cpu") return torch.CPU;
        var available = CudaAvailable();
        if (request.Kind == "auto") return available ? torch.CUDA : torch.CPU;
        if (!available)
            throw new SnceSetupException(
                $"CUDA was asked for but is not available with the libtorch in '{status.LibTorchDir}' ({status.LibTorchSource}). " +
                $"Install PyTorch with CUDA and pass --libtorch <site-packages>/torch/lib or set {LibTorchLocator.EnvironmentVariable}; use --device cpu to run without a GPU.");
        var count = torch.cuda.device_count();
        if (request.Index is { } i && i >= count)
            throw new SnceSetupException($"--device cuda:{i} asked for, but this machine has {count} CUDA device(s) (0..{count - 1}).");
        return new torch.Device(DeviceType.CUDA, request.Index ?? 0);
    }

    /// <summary>True when libtorch can use a CUDA device (never throws).</summary>
    public static bool CudaAvailable()
    {
        try { return torch.cuda.is_available(); }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or DllNotFoundException) { return false; }
    }
}
