using System.Runtime.InteropServices;
using System.Text;

namespace Snce.Native.Cuda;

/// <summary>
/// NVRTC (libnvrtc.so): compiles CUDA C to PTX at run time, so kernels need no build step and no nvcc.
/// Loaded by path through <see cref="NvrtcLocator"/>; calls go through function pointers taken from that exact
/// library. Reference: https://docs.nvidia.com/cuda/nvrtc/.
/// </summary>
public sealed unsafe class Nvrtc
{
    static readonly object Gate = new();
    static Nvrtc? instance;

    readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> createProgram;
    readonly delegate* unmanaged<nint, int, byte**, int> compileProgram;
    readonly delegate* unmanaged<nint, nuint*, int> getPtxSize;
    readonly delegate* unmanaged<nint, byte*, int> getPtx;
    readonly delegate* unmanaged<nint, nuint*, int> getLogSize;
    readonly delegate* unmanaged<nint, byte*, int> getLog;
    readonly delegate* unmanaged<nint*, int> destroyProgram;
    readonly delegate* unmanaged<int, byte*> getErrorString;

    /// <summary>The library file that was loaded.</summary>
    public string LibraryPath { get; }
    /// <summary>NVRTC's version (major, minor), e.g. (13, 0).</summary>
    public (int Major, int Minor) Version { get; }

    Nvrtc(nint handle, string path)
    {
        LibraryPath = path;
        nint Export(string name) => NativeLibrary.TryGetExport(handle, name, out var f) ? f
            : throw new SnceSetupException($"'{path}' does not export {name}; it is not a usable NVRTC library.");
        createProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)Export("nvrtcCreateProgram");
        compileProgram = (delegate* unmanaged<nint, int, byte**, int>)Export("nvrtcCompileProgram");
        getPtxSize = (delegate* unmanaged<nint, nuint*, int>)Export("nvrtcGetPTXSize");
        getPtx = (delegate* unmanaged<nint, byte*, int>)Export("nvrtcGetPTX");
        getLogSize = (delegate* unmanaged<nint, nuint*, int>)Export("nvrtcGetProgramLogSize");
        getLog = (delegate* unmanaged<nint, byte*, int>)Export("nvrtcGetProgramLog");
        destroyProgram = (delegate* unmanaged<nint*, int>)Export("nvrtcDestroyProgram");
        getErrorString = (delegate* unmanaged<int, byte*>)Export("nvrtcGetErrorString");
        var version = (delegate* unmanaged<int*, int*, int>)Export("nvrtcVersion");
        int major, minor;
        Check(version(&major, &minor), "nvrtcVersion");
        Version = (major, minor);
    }

    /// <summary>
    /// The process-wide NVRTC, found once through <see cref="NvrtcLocator"/>; throws <see cref="SnceSetupException"/>
    /// listing every place looked at when there is none.
    /// </summary>
    public static Nvrtc Load()
    {
        lock (Gate)
        {
            if (instance is not null) return instance;
            var candidates = NvrtcLocator.Candidates(Environment.GetEnvironmentVariable(NvrtcLocator.EnvironmentVariable),
                TorchRuntime.Status?.LibTorchDir, Environment.GetEnvironmentVariable("CUDA_HOME"));
            var (handle, path) = NvrtcLocator.Open(candidates, p => NativeLibrary.TryLoad(p, out var h) ? h : 0);
            instance = new Nvrtc(handle, path);
            return instance;
        }
    }

    /// <summary>Compiles <paramref name="source"/> to PTX (NUL-terminated); throws with NVRTC's log on errors.</summary>
    public byte[] CompileToPtx(string source, string programName, IReadOnlyList<string> options)
    {
        var src = Utf8(source);
        var name = Utf8(programName);
        var opts = options.Select(Utf8).ToArray();
        var handles = opts.Select(o => GCHandle.Alloc(o, GCHandleType.Pinned)).ToArray();
        nint prog = 0;
        try
        {
            fixed (byte* s = src, n = name)
            {
                Check(createProgram(&prog, s, n, 0, null, null), "nvrtcCreateProgram");
                var optPtrs = stackalloc byte*[Math.Max(1, opts.Length)];
                for (var i = 0; i < opts.Length; i++) optPtrs[i] = (byte*)handles[i].AddrOfPinnedObject();
                var result = compileProgram(prog, opts.Length, optPtrs);
                if (result != 0)
                    throw new InvalidOperationException(
                        $"NVRTC could not compile {programName} ({ErrorText(result)}) with options [{string.Join(' ', options)}]:\n{Log(prog)}");
                nuint size;
                Check(getPtxSize(prog, &size), "nvrtcGetPTXSize");
                var ptx = new byte[(int)size];
                fixed (byte* p = ptx) Check(getPtx(prog, p), "nvrtcGetPTX");
                if (ptx.Length == 0 || ptx[^1] != 0) Array.Resize(ref ptx, ptx.Length + 1); // keep it NUL-terminated
                return ptx;
            }
        }
        finally
        {
            if (prog != 0) destroyProgram(&prog);
            foreach (var h in handles) h.Free();
        }
    }

    string Log(nint prog)
    {
        nuint size;
        if (getLogSize(prog, &size) != 0 || size <= 1) return "(no log)";
        var log = new byte[(int)size];
        fixed (byte* p = log) if (getLog(prog, p) != 0) return "(no log)";
        return Encoding.UTF8.GetString(log, 0, log.Length - 1);
    }

    string ErrorText(int result) => Marshal.PtrToStringUTF8((nint)getErrorString(result)) ?? $"error {result}";

    void Check(int result, string call)
    {
        if (result != 0) throw new InvalidOperationException($"{call} failed: {ErrorText(result)}");
    }

    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s + "\0");
}

/// <summary>Where NVRTC can be: an explicit path, the loader's search path, a CUDA toolkit, or PyTorch's CUDA wheels.</summary>
public static class NvrtcLocator
{
    /// <summary>Environment variable with the full path of a libnvrtc.so to use.</summary>
    public const string EnvironmentVariable = "SNCE_NVRTC";

    /// <summary>The library names tried, newest CUDA first.</summary>
    public static readonly IReadOnlyList<string> Names = ["libnvrtc.so.13", "libnvrtc.so.12"];

    /// <summary>
    /// Candidates in the order they are tried: <paramref name="explicitPath"/> (SNCE_NVRTC); the bare library names,
    /// which the dynamic loader resolves through LD_LIBRARY_PATH and its cache; then the same names in
    /// <paramref name="cudaHome"/>, /usr/local/cuda, and next to PyTorch (<c>site-packages/nvidia/cu13/lib</c>,
    /// <c>nvidia/cuda_nvrtc/lib</c>, torch/lib itself) when <paramref name="libTorchDir"/> is PyTorch's torch/lib.
    /// </summary>
    public static IReadOnlyList<string> Candidates(string? explicitPath, string? libTorchDir, string? cudaHome)
    {
        var list = new List<string>();
        if (!string.IsNullOrWhiteSpace(explicitPath)) list.Add(explicitPath);
        list.AddRange(Names);
        var dirs = new List<string>();
        if (!string.IsNullOrWhiteSpace(cudaHome)) dirs.AddRange([Path.Combine(cudaHome, "targets", "x86_64-linux", "lib"), Path.Combine(cudaHome, "lib64")]);
        dirs.AddRange(["/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/cuda/lib64"]);
        if (!string.IsNullOrWhiteSpace(libTorchDir) && Path.IsPathRooted(libTorchDir))
        {
            var sitePackages = Path.GetFullPath(Path.Combine(libTorchDir, "..", ".."));
            dirs.AddRange([Path.Combine(sitePackages, "nvidia", "cu13", "lib"), Path.Combine(sitePackages, "nvidia", "cuda_nvrtc", "lib"), libTorchDir]);
        }
        foreach (var d in dirs.Distinct())
            foreach (var n in Names)
                list.Add(Path.Combine(d, n));
        return list;
    }

    /// <summary>
    /// Opens the first candidate that <paramref name="tryLoad"/> loads (a nonzero handle). Throws
    /// <see cref="SnceSetupException"/> naming every candidate and the remedies when none does.
    /// </summary>
    public static (nint Handle, string Path) Open(IReadOnlyList<string> candidates, Func<string, nint> tryLoad)
    {
        foreach (var c in candidates)
        {
            // Bare names go to the dynamic loader; paths are tried only when the file exists.
            if (c.Contains('/') && !File.Exists(c)) continue;
            var h = tryLoad(c);
            if (h != 0) return (h, c);
        }
        throw new SnceSetupException(
            "NVRTC (libnvrtc.so.13 or .12), which compiles the fused loss's CUDA kernel at run time, was not found. Looked for: " +
            string.Join(", ", candidates) + ". " +
            $"Put the folder that holds it on LD_LIBRARY_PATH (e.g. /usr/local/cuda/targets/x86_64-linux/lib, or PyTorch's site-packages/nvidia/cu13/lib), " +
            $"set {EnvironmentVariable} to the library's full path, or use the libtorch backend (FusedOptions.Backend = Torch).");
    }
}
