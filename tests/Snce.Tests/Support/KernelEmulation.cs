using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Snce.Tests.Support;

/// <summary>
/// CUDA C kernels run on the CPU, for the tests of the fused loss and of the fused blocks: the kernel source (the exact
/// text NVRTC compiles) built with g++ into a shared library with Support/Emulation/host_prelude.h (CUDA's built-ins on
/// the host), emu_runtime.h (one OS thread per CUDA thread, real barriers and warp exchanges) and a harness that maps
/// kernel names to functions and exports <c>int EXPORT(const char* kernel, int grid, int block, const Args* args)</c>:
/// below 0 when it refuses the launch, else a count the harness defines (misaligned vector accesses for the loss rows).
/// A library is built once per content (cached in the temp folder by hash) and loaded once per process.
/// </summary>
sealed unsafe class KernelEmulation
{
    static readonly ConcurrentDictionary<string, Lazy<(nint Lib, string Why)>> Libraries = new();

    readonly delegate* unmanaged<byte*, int, int, void*, int> launch;

    /// <summary>The kernels launched through this instance, in order.</summary>
    public List<string> Launched { get; } = [];

    KernelEmulation(nint lib, string export) => launch = (delegate* unmanaged<byte*, int, int, void*, int>)NativeLibrary.GetExport(lib, export);

    /// <summary>
    /// A fresh launcher over the library for <paramref name="name"/> (built on first use), or null with the reason (no g++).
    /// Throws when the source does not compile, naming <paramref name="what"/> and showing g++'s output.
    /// </summary>
    /// <param name="name">Names the library and its cache folder (snce-NAME-emu-HASH/libsnce_NAME_emu.so).</param>
    /// <param name="source">The CUDA C source, written as kernel.cu for the harness to include.</param>
    /// <param name="what">The source as the compile error names it ("BlockKernels.cu").</param>
    /// <param name="harness">The harness, relative to the test output folder (Models/Fused/Emulation/blocks_harness.cpp).</param>
    /// <param name="export">The harness's launch function.</param>
    public static KernelEmulation? Load(string name, string source, string what, string harness, string export, out string why)
    {
        var (lib, w) = Libraries.GetOrAdd(name, _ => new(() => Build(name, source, what, harness))).Value;
        why = w;
        return lib == 0 ? null : new KernelEmulation(lib, export);
    }

    /// <summary>Launches <paramref name="kernel"/>; returns the harness's count, and throws when the harness refuses the launch.</summary>
    public int Launch<TArgs>(string kernel, int grid, int block, ref TArgs args) where TArgs : unmanaged
    {
        var bytes = Encoding.ASCII.GetBytes(kernel + "\0");
        int r;
        fixed (byte* n = bytes)
        fixed (TArgs* a = &args)
            r = launch(n, grid, block, a);
        if (r < 0) throw new InvalidOperationException($"emulator refused {kernel} with {block} threads");
        Launched.Add(kernel);
        return r;
    }

    static (nint, string) Build(string name, string source, string what, string harness)
    {
        var support = Path.Combine(AppContext.BaseDirectory, "Support", "Emulation");
        var files = new Dictionary<string, string>
        {
            ["kernel.cu"] = source,
            ["host_prelude.h"] = File.ReadAllText(Path.Combine(support, "host_prelude.h")),
            ["emu_runtime.h"] = File.ReadAllText(Path.Combine(support, "emu_runtime.h")),
            [Path.GetFileName(harness)] = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, harness)),
        };
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Concat(files.Select(f => f.Key + "\0" + f.Value + "\0")))))[..12];
        var dir = Path.Combine(Path.GetTempPath(), $"snce-{name}-emu-{hash}");
        var lib = Path.Combine(dir, $"libsnce_{name}_emu.so");
        if (!File.Exists(lib))
        {
            Directory.CreateDirectory(dir);
            foreach (var (file, text) in files) File.WriteAllText(Path.Combine(dir, file), text);
            var tmp = lib + $".{Environment.ProcessId}.tmp";
            var (code, output) = Run("g++", dir, "-std=c++20", "-O1", "-fno-strict-aliasing", "-Wall", "-Wno-unknown-pragmas", "-shared", "-fPIC", "-pthread",
                Path.GetFileName(harness), "-o", tmp);
            if (code == -1) return (0, "g++ not found");
            if (code != 0) throw new InvalidOperationException($"{what} does not compile as C++ for the emulator:\n{output}");
            File.Move(tmp, lib, overwrite: true);
        }
        return (NativeLibrary.Load(lib), "");
    }

    /// <summary>Runs a tool; exit code -1 when it is not installed.</summary>
    public static (int Code, string Output) Run(string tool, string dir, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            var outp = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, outp + err.Result);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (-1, $"{tool} not found");
        }
    }
}
