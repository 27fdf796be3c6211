using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Snce.Losses.Fused;

namespace Snce.Tests.Losses.Fused;

/// <summary>
/// The fused loss's CUDA kernel (the exact source NVRTC compiles) built with g++ against host_prelude.h, which runs
/// each CUDA thread as an OS thread with real barriers and warp exchanges. Launches go through the same
/// <see cref="IKernelLauncher"/> seam as on the GPU, with CPU tensors' pointers; misaligned vector accesses are counted.
/// </summary>
sealed unsafe class KernelEmulator : IKernelLauncher
{
    static readonly Lazy<(nint Lib, string Why)> Built = new(Build);

    readonly delegate* unmanaged<byte*, int, int, FusedKernelRows.RowArgs*, int> launch;

    public int Misaligned { get; private set; }
    public List<string> Kernels { get; } = [];

    KernelEmulator(nint lib) => launch = (delegate* unmanaged<byte*, int, int, FusedKernelRows.RowArgs*, int>)NativeLibrary.GetExport(lib, "emu_launch");

    /// <summary>A fresh launcher over the (once per process) compiled emulation, or null with the reason (no g++).</summary>
    public static KernelEmulator? Create(out string why)
    {
        var (lib, w) = Built.Value;
        why = w;
        return lib == 0 ? null : new KernelEmulator(lib);
    }

    public void Launch(string kernel, int grid, int block, ref FusedKernelRows.RowArgs args)
    {
        var name = Encoding.ASCII.GetBytes(kernel + "\0");
        int r;
        fixed (byte* n = name)
        fixed (FusedKernelRows.RowArgs* a = &args)
            r = launch(n, grid, block, a);
        if (r < 0) throw new InvalidOperationException($"emulator refused {kernel} with {block} threads");
        Misaligned += r;
        Kernels.Add(kernel);
    }

    static (nint, string) Build()
    {
        var here = Path.Combine(AppContext.BaseDirectory, "Losses", "Fused", "Emulation");
        var files = new[] { "host_prelude.h", "harness.cpp" }.Select(f => File.ReadAllText(Path.Combine(here, f))).ToArray();
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(FusedKernelRows.Source + files[0] + files[1])))[..12];
        var dir = Path.Combine(Path.GetTempPath(), $"snce-kernel-emu-{hash}");
        var lib = Path.Combine(dir, "libsnce_emu.so");
        if (!File.Exists(lib))
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "kernel.cu"), FusedKernelRows.Source);
            File.WriteAllText(Path.Combine(dir, "host_prelude.h"), files[0]);
            File.WriteAllText(Path.Combine(dir, "harness.cpp"), files[1]);
            var tmp = lib + $".{Environment.ProcessId}.tmp";
            var (code, output) = Run("g++", dir, "-std=c++20", "-O1", "-fno-strict-aliasing", "-Wall", "-Wno-unknown-pragmas", "-shared", "-fPIC", "-pthread",
                "harness.cpp", "-o", tmp);
            if (code == -1) return (0, "g++ not found");
            if (code != 0) throw new InvalidOperationException($"the kernel source does not compile as C++ for the emulator:\n{output}");
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
