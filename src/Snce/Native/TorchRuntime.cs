using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace Snce.Native;

/// <summary>Where libtorch came from and what had to be done to load it.</summary>
/// <param name="LibTorchSharpPath">The libLibTorchSharp.so that was loaded (maybe a patched copy).</param>
/// <param name="LibTorchDir">Directory of the libtorch libraries in use.</param>
/// <param name="LibTorchSource"><c>nuget</c> (TorchSharp-cpu's libtorch), <c>pytorch</c> (a PyTorch install's torch/lib) or <c>system</c> (found through LD_LIBRARY_PATH).</param>
/// <param name="LibTorchVersion">libtorch's version as best known.</param>
/// <param name="GlibcxxFixApplied">True when a copy of libLibTorchSharp.so with a weak GLIBCXX_3.4.32 requirement was loaded.</param>
public sealed record NativeStatus(
    string LibTorchSharpPath, string LibTorchDir, string LibTorchSource, string LibTorchVersion, bool GlibcxxFixApplied);

/// <summary>
/// Loads libtorch and TorchSharp's native shim before TorchSharp's first call, on every supported machine:
/// TorchSharp-cpu's own libtorch by default, or a PyTorch install's (with CUDA) when asked.
/// Idempotent and thread-safe; every entry point (CLI, tests, benchmarks) calls <see cref="EnsureLoaded"/>.
/// </summary>
public static class TorchRuntime
{
    /// <summary>The GLIBCXX version that TorchSharp 0.107's shim asks for and Debian 12 lacks.</summary>
    public const string MissingGlibcxx = "GLIBCXX_3.4.32";

    static readonly object Gate = new();
    static NativeStatus? status;

    /// <summary>The status of the load, or null before <see cref="EnsureLoaded"/>.</summary>
    public static NativeStatus? Status { get { lock (Gate) return status; } }

    /// <summary>
    /// Loads the native libraries once. <paramref name="libTorchDir"/> (or SNCE_LIBTORCH) selects a PyTorch
    /// torch/lib; with <paramref name="findPyTorch"/> a missing directory is looked up through python3.
    /// </summary>
    public static NativeStatus EnsureLoaded(string? libTorchDir = null, bool findPyTorch = false)
    {
        lock (Gate)
        {
            if (status is not null)
            {
                if (libTorchDir is not null && Path.GetFullPath(libTorchDir) != status.LibTorchDir)
                    throw new SnceSetupException($"libtorch is already loaded from '{status.LibTorchDir}' in this process; '{libTorchDir}' can only be chosen before the first tensor operation.");
                return status;
            }
            status = Load(libTorchDir, findPyTorch);
            return status;
        }
    }

    static NativeStatus Load(string? libTorchDir, bool findPyTorch)
    {
        string? dir = null, source = null;
        if (libTorchDir is not null) (dir, source) = (LibTorchLocator.Validate(libTorchDir, "--libtorch"), "pytorch");
        else if (Environment.GetEnvironmentVariable(LibTorchLocator.EnvironmentVariable) is { Length: > 0 } env)
            (dir, source) = (LibTorchLocator.Validate(env, LibTorchLocator.EnvironmentVariable), "pytorch");
        else if (findPyTorch && LibTorchLocator.FromPython() is { } found) (dir, source) = (found, "pytorch");

        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            // Elsewhere TorchSharp's own loader does the job; nothing to fix.
            torch.InitializeDeviceType(DeviceType.CPU);
            return new NativeStatus("(TorchSharp default)", "(TorchSharp default)", "nuget", torch.__version__, false);
        }

        var shim = FindShim();
        var shimDir = Path.GetDirectoryName(shim)!;
        var bundled = File.Exists(Path.Combine(shimDir, "libtorch_cpu.so"));
        if (dir is null && bundled) (dir, source) = (shimDir, "nuget");

        if (dir is not null) PreloadLibTorch(dir);
        // Do not touch the torch class before the shim is loaded: its static constructor loads natives itself.
        var version = source == "pytorch" ? LibTorchLocator.PyTorchVersion(dir!) : null;

        if (TryLoad(shim, out var error))
            return Finish(new NativeStatus(shim, dir ?? SystemLibTorchDir(), source ?? "system", version ?? "", false));

        if (!error.Contains("GLIBCXX", StringComparison.Ordinal))
            throw new SnceSetupException($"Could not load TorchSharp's native library '{shim}': {error}. " +
                (dir is null ? "No libtorch was found: set --libtorch or SNCE_LIBTORCH to PyTorch's torch/lib, or restore the TorchSharp-cpu package." : $"Check that '{dir}' is a torch/lib compatible with TorchSharp 0.107 (libtorch 2.10 or newer)."));

        var patched = PatchedCopy(shim);
        if (!TryLoad(patched, out var patchedError))
            throw new SnceSetupException($"Loading '{shim}' failed ({error}); the copy with a weak {MissingGlibcxx} requirement '{patched}' failed too: {patchedError}. " +
                "Install a libstdc++ from GCC 13 or newer (e.g. Debian 13 / Ubuntu 24.04) or set LD_LIBRARY_PATH to one.");
        return Finish(new NativeStatus(patched, dir ?? SystemLibTorchDir(), source ?? "system", version ?? "", true));
    }

    static NativeStatus Finish(NativeStatus s)
    {
        torch.InitializeDeviceType(DeviceType.CPU);
        return s.LibTorchVersion == "" ? s with { LibTorchVersion = s.LibTorchSource == "nuget" ? torch.__version__ : "unknown" } : s;
    }

    static string FindShim()
    {
        const string name = "libLibTorchSharp.so";
        string[] roots = [AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? AppContext.BaseDirectory];
        foreach (var root in roots.Distinct())
            foreach (var candidate in new[] { Path.Combine(root, name), Path.Combine(root, "runtimes", "linux-x64", "native", name) })
                if (File.Exists(candidate)) return candidate;
        throw new SnceSetupException($"TorchSharp's native library {name} is not next to the application ({AppContext.BaseDirectory}). Rebuild or republish so that the TorchSharp-cpu package's runtimes/linux-x64/native files are copied.");
    }

    /// <summary>Loads libtorch by full path, so that later loads by soname find these copies.</summary>
    static void PreloadLibTorch(string dir)
    {
        foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so" })
        {
            var path = Path.Combine(dir, lib);
            if (!File.Exists(path)) continue;
            if (!TryLoad(path, out var error))
                throw new SnceSetupException($"Could not load '{path}': {error}. The libtorch in '{dir}' does not load on this machine (missing CUDA libraries or a broken PyTorch install?).");
        }
    }

    static bool TryLoad(string path, out string error)
    {
        try
        {
            NativeLibrary.Load(path);
            error = "";
            return true;
        }
        catch (DllNotFoundException e)
        {
            error = e.Message;
            return false;
        }
    }

    /// <summary>
    /// Writes (once, atomically) a copy of the shim whose GLIBCXX_3.4.32 requirement is weak, into the
    /// Snce cache, named by the original's hash so that a TorchSharp upgrade gets a fresh copy.
    /// </summary>
    static string PatchedCopy(string shim)
    {
        var bytes = File.ReadAllBytes(shim);
        var hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        var dir = Path.Combine(SncePaths.CacheDir, "native", hash);
        var target = Path.Combine(dir, "libLibTorchSharp.so");
        if (File.Exists(target)) return target;
        if (ElfVersionPatch.MakeWeak(bytes, MissingGlibcxx) == ElfVersionPatch.Outcome.NotRequired)
            throw new SnceSetupException($"'{shim}' failed to load with a GLIBCXX error but does not require {MissingGlibcxx}; this TorchSharp build needs a newer libstdc++ than this machine has.");
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllBytes(target, bytes);
        return target;
    }

    static string SystemLibTorchDir() =>
        Environment.GetEnvironmentVariable("LD_LIBRARY_PATH")?.Split(':')
            .FirstOrDefault(d => d.Length > 0 && File.Exists(Path.Combine(d, "libtorch_cpu.so"))) ?? "(dynamic loader search path)";
}
