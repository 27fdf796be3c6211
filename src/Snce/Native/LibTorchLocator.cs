using System.Diagnostics;

namespace Snce.Native;

/// <summary>Finds a libtorch directory (PyTorch's <c>torch/lib</c>) given by the user or installed with PyTorch.</summary>
public static class LibTorchLocator
{
    /// <summary>Environment variable that names a libtorch directory (PyTorch's torch/lib).</summary>
    public const string EnvironmentVariable = "SNCE_LIBTORCH";

    static readonly string[] Required = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    /// <summary>Throws unless <paramref name="dir"/> holds libc10, libtorch_cpu and libtorch; returns its full path.</summary>
    public static string Validate(string dir, string origin)
    {
        var full = Path.GetFullPath(dir);
        if (!Directory.Exists(full))
            throw new SnceSetupException($"libtorch directory '{full}' (from {origin}) does not exist. Point it at PyTorch's torch/lib, e.g. $(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib.");
        var missing = Required.Where(f => !File.Exists(Path.Combine(full, f))).ToArray();
        if (missing.Length > 0)
            throw new SnceSetupException($"libtorch directory '{full}' (from {origin}) lacks {string.Join(", ", missing)}. Point it at PyTorch's torch/lib folder.");
        return full;
    }

    /// <summary>Asks <c>python3 -c "import torch"</c> where PyTorch lives; null when python3 or torch is absent.</summary>
    public static string? FromPython(TimeSpan? timeout = null)
    {
        try
        {
            var psi = new ProcessStartInfo("python3", ["-c", "import torch,os;print(os.path.dirname(torch.__file__))"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            using var p = Process.Start(psi);
            if (p is null) return null;
            var output = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60))) { p.Kill(true); return null; }
            if (p.ExitCode != 0) return null;
            var lib = Path.Combine(output.Result.Trim(), "lib");
            return Required.All(f => File.Exists(Path.Combine(lib, f))) ? lib : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // no python3 on PATH
        }
    }

    /// <summary>PyTorch's version string from <c>torch/version.py</c> beside a torch/lib directory, if present.</summary>
    public static string? PyTorchVersion(string libDir)
    {
        var versionPy = Path.Combine(libDir, "..", "version.py");
        if (!File.Exists(versionPy)) return null;
        foreach (var line in File.ReadLines(versionPy))
            if (line.StartsWith("__version__", StringComparison.Ordinal))
                return line.Split('=', 2)[1].Trim().Trim('\'', '"');
        return null;
    }

    /// <summary>True when an NVIDIA driver is present (so looking for a CUDA libtorch is worthwhile).</summary>
    public static bool NvidiaDriverPresent() =>
        Directory.Exists("/proc/driver/nvidia") || File.Exists("/dev/nvidiactl");
}
