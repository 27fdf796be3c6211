using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Snce.Native.Cuda;

/// <summary>
/// A CUDA C source compiled once per process with NVRTC (the PTX is also cached on disk under the Snce cache,
/// keyed by source, options and NVRTC version) and loaded once per device into libtorch's primary context.
/// </summary>
public sealed class CudaModule
{
    static readonly Dictionary<(string Key, int Device), CudaModule> Loaded = [];
    static readonly Dictionary<string, byte[]> PtxByKey = [];
    static readonly Dictionary<(Type Launcher, int Device), (object? Value, string? Unavailable)> Launchers = [];

    readonly nint module;
    readonly Dictionary<string, nint> functions = [];

    /// <summary>The device the module is loaded on.</summary>
    public int Device { get; }
    /// <summary>NVRTC options used (architecture first).</summary>
    public IReadOnlyList<string> Options { get; }
    /// <summary>Where the PTX came from: "compiled" or "disk cache".</summary>
    public string PtxOrigin { get; }

    CudaModule(nint module, int device, IReadOnlyList<string> options, string origin)
    {
        this.module = module;
        Device = device;
        Options = options;
        PtxOrigin = origin;
    }

    /// <summary>
    /// The CUDA C source embedded in this assembly under <paramref name="fileName"/> (e.g. "BlockKernels.cu"), as NVRTC
    /// compiles it: each line <c>#include "NAME.cuh"</c> replaced by the embedded header NAME.cuh (the shared bf16
    /// helpers, Native/Cuda/Bf16.cuh), once per source. Inlined rather than handed to NVRTC as headers, so the PTX cache
    /// key (a hash of this text) changes when a header does, and the CPU emulator and clang checks compile the same text.
    /// </summary>
    public static string EmbeddedSource(string fileName) => Assemble(fileName, EmbeddedText);

    /// <summary>The embedded file <paramref name="fileName"/> as written (its includes not inlined).</summary>
    internal static string EmbeddedText(string fileName)
    {
        var asm = typeof(CudaModule).Assembly;
        var names = asm.GetManifestResourceNames().Where(n => n.EndsWith("." + fileName, StringComparison.Ordinal)).ToArray();
        if (names.Length != 1)
            throw new InvalidOperationException($"expected one embedded CUDA file named '{fileName}', found {names.Length}; kernel sources and headers are embedded by src/Snce/Snce.csproj (**/*.cu, **/*.cuh)");
        using var s = asm.GetManifestResourceStream(names[0])!;
        using var reader = new StreamReader(s);
        return reader.ReadToEnd();
    }

    /// <summary>The names of the embedded kernel sources (*.cu), e.g. "SnceRows.cu".</summary>
    internal static IReadOnlyList<string> EmbeddedKernelSources() =>
        typeof(CudaModule).Assembly.GetManifestResourceNames().Where(n => n.EndsWith(".cu", StringComparison.Ordinal))
            .Select(n => n[(n.LastIndexOf('.', n.Length - 4) + 1)..]).Order(StringComparer.Ordinal).ToArray();

    static readonly Regex IncludeLine = new(@"^[ \t]*#[ \t]*include\b.*$", RegexOptions.Multiline);
    static readonly Regex HeaderInclude = new(@"^[ \t]*#[ \t]*include[ \t]+""([A-Za-z0-9_]+\.cuh)""[ \t]*\r?$");

    /// <summary>
    /// <paramref name="fileName"/>'s text from <paramref name="read"/> with its <c>#include "NAME.cuh"</c> lines replaced
    /// by those headers' text (each header once; a repeated include becomes an empty line). Any other include fails
    /// here, naming the file: NVRTC gets no headers and would refuse it only on a GPU.
    /// </summary>
    internal static string Assemble(string fileName, Func<string, string> read)
    {
        var inlined = new HashSet<string>(StringComparer.Ordinal);
        return IncludeLine.Replace(read(fileName), m =>
        {
            var header = HeaderInclude.Match(m.Value);
            if (!header.Success)
                throw new InvalidOperationException($"{fileName}: '{m.Value.Trim()}' cannot be compiled by NVRTC here (it gets no headers); include only embedded headers, as #include \"Bf16.cuh\"");
            var name = header.Groups[1].Value;
            if (!inlined.Add(name)) return "";
            var text = read(name);
            if (IncludeLine.IsMatch(text)) throw new InvalidOperationException($"{name} (included by {fileName}) includes another file; embedded headers must be self-contained");
            return $"// ---- {name} (inlined by CudaModule.EmbeddedSource) ----\n{text.TrimEnd()}\n// ---- end of {name} ----";
        });
    }

    /// <summary>
    /// The launcher of type <typeparamref name="T"/> for <paramref name="device"/>, made once per process by
    /// <paramref name="create"/> (one cache for every kernel family); null, cached too, when NVRTC or the driver is
    /// missing, so the caller's libtorch path runs.
    /// </summary>
    internal static T? LauncherOrNull<T>(int device, Func<T> create) where T : class => (T?)Launcher(typeof(T), device, create).Value;

    /// <summary>
    /// <see cref="LauncherOrNull{T}"/> for callers that report why: throws <see cref="SnceSetupException"/> with the
    /// reason NVRTC or the driver was found missing (cached with the result, so it is found once per launcher and device).
    /// </summary>
    internal static T LauncherOrThrow<T>(int device, Func<T> create) where T : class
    {
        var (value, unavailable) = Launcher(typeof(T), device, create);
        return (T?)value ?? throw new SnceSetupException(unavailable!);
    }

    static (object? Value, string? Unavailable) Launcher(Type type, int device, Func<object> create)
    {
        lock (Launchers)
        {
            if (Launchers.TryGetValue((type, device), out var entry)) return entry;
            try { entry = (create(), null); }
            catch (Exception e) when (e is SnceSetupException or DllNotFoundException or EntryPointNotFoundException) { entry = (null, e.Message); }
            Launchers[(type, device)] = entry;
            return entry;
        }
    }

    /// <summary>Compiles (or reuses) <paramref name="source"/> for <paramref name="device"/>'s architecture and loads it there.</summary>
    public static CudaModule Get(string name, string source, int device)
    {
        lock (Loaded)
        {
            var (major, minor) = CudaDriver.ComputeCapability(device);
            var nvrtc = Nvrtc.Load();
            string[] options = [$"--gpu-architecture=compute_{major}{minor}", "--std=c++17", "-default-device"];
            var key = CacheKey(source, options, nvrtc.Version);
            if (Loaded.TryGetValue((key, device), out var m)) return m;
            var origin = "memory";
            if (!PtxByKey.TryGetValue(key, out var ptx))
            {
                var file = Path.Combine(SncePaths.CacheDir, "cuda", $"{name}-{key}.ptx");
                if (File.Exists(file)) { ptx = File.ReadAllBytes(file); origin = "disk cache"; }
                else
                {
                    ptx = nvrtc.CompileToPtx(source, name + ".cu", options);
                    origin = "compiled";
                    try
                    {
                        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                        AtomicFile.WriteAllBytes(file, ptx);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* a cache, not a requirement */ }
                }
                PtxByKey[key] = ptx;
            }
            CudaDriver.UsePrimaryContext(device);
            m = new CudaModule(CudaDriver.LoadModule(ptx), device, options, origin);
            Loaded[(key, device)] = m;
            return m;
        }
    }

    /// <summary>The CUfunction of a kernel by its <c>extern "C"</c> name.</summary>
    public nint Function(string kernel)
    {
        lock (functions)
        {
            if (!functions.TryGetValue(kernel, out var f)) functions[kernel] = f = CudaDriver.GetFunction(module, kernel);
            return f;
        }
    }

    /// <summary>
    /// The kernel compiled for a dtype, <c>name_f32</c> or <c>name_bf16</c> (the convention of the embedded .cu files);
    /// for any other dtype throws "<paramref name="family"/>: fp32 or bf16 only, not DTYPE".
    /// </summary>
    public static string KernelFor(string name, TorchSharp.torch.ScalarType dtype, string family) => dtype switch
    {
        TorchSharp.torch.ScalarType.Float32 => name + "_f32",
        TorchSharp.torch.ScalarType.BFloat16 => name + "_bf16",
        _ => throw new ArgumentException($"{family}: fp32 or bf16 only, not {dtype}"),
    };

    /// <summary>Queues <paramref name="kernel"/> on stream 0 with one by-value parameter; see <see cref="CudaDriver.Launch{T}"/>.</summary>
    public void Launch<T>(string kernel, int grid, int block, ref T parameter) where T : unmanaged
    {
        if (grid <= 0) return;
        var f = Function(kernel);
        CudaDriver.UsePrimaryContext(Device);
        CudaDriver.Launch(f, (uint)grid, (uint)block, 0, ref parameter);
    }

    static string CacheKey(string source, string[] options, (int, int) version) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{source}\n{string.Join(' ', options)}\nnvrtc {version}")))[..16].ToLowerInvariant();
}
