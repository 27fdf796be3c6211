using System.Text.RegularExpressions;
using Snce.Losses.Fused;
using Snce.Models.Fused;
using Snce.Native;
using Snce.Native.Cuda;
using Snce.Training.Fused;
using Xunit.Abstractions;

namespace Snce.Tests.Native;

/// <summary>
/// The NVRTC kernel sources share one header of bf16 helpers (Native/Cuda/Bf16.cuh), inlined by
/// <see cref="CudaModule.EmbeddedSource"/>; the CUDA launchers share <see cref="CudaModule"/>'s one cache. Checked on the
/// text, since this machine cannot compile CUDA: every embedded kernel source that uses a helper includes the header
/// and defines none itself, and the text NVRTC gets defines each helper exactly once and includes nothing.
/// </summary>
public class CudaKernelSourceTests(ITestOutputHelper output)
{
    /// <summary>What Bf16.cuh defines, each as a pattern matching its definition (not its uses).</summary>
    static readonly (string Helper, Regex Definition)[] Helpers =
    [
        ("bf16_t", new(@"typedef\s+unsigned\s+short\s+bf16_t\s*;")),
        ("bf2f", Function("bf2f")),
        ("f2bf_bits", Function("f2bf_bits")),
        ("f2bf", Function("f2bf")),
        ("bf16_lo", Function("bf16_lo")),
        ("bf16_hi", Function("bf16_hi")),
        ("bf16_pack", Function("bf16_pack")),
        ("Elem", new(@"template\s*<\s*typename\s+\w+\s*>\s*struct\s+Elem\s*;")),
        ("Elem<float>", new(@"struct\s+Elem\s*<\s*float\s*>\s*\{")),
        ("Elem<bf16_t>", new(@"struct\s+Elem\s*<\s*bf16_t\s*>\s*\{")),
    ];

    /// <summary>A free __device__ function's definition: its name right after the declaration's words, no call in between.</summary>
    static Regex Function(string name) => new($@"__device__[^;{{}}()]*\b{name}\s*\([^;{{}}]*\)\s*\{{");

    static readonly Regex Uses = new(@"\b(bf16_t|bf2f|f2bf_bits|f2bf|bf16_lo|bf16_hi|bf16_pack|Elem)\b");
    static readonly Regex IncludeLine = new(@"^[ \t]*#[ \t]*include\b.*$", RegexOptions.Multiline);
    const string SharedInclude = "#include \"Bf16.cuh\"";

    [Fact]
    public void EveryKernelSourceThatUsesTheHelpersGetsTheSharedHeaderAndDefinesNoneItself()
    {
        var sources = CudaModule.EmbeddedKernelSources();
        Assert.Equal(["AdamWKernels.cu", "BlockKernels.cu", "SnceRows.cu"], sources);  // a new kernel file joins this check by being embedded
        foreach (var (helper, definition) in Helpers)
            Assert.True(definition.Matches(CudaModule.EmbeddedText("Bf16.cuh")).Count == 1, $"Bf16.cuh must define {helper} once (the pattern is stale otherwise)");
        foreach (var name in sources)
        {
            var raw = CudaModule.EmbeddedText(name);
            var assembled = CudaModule.EmbeddedSource(name);
            foreach (var (helper, definition) in Helpers)
            {
                Assert.True(definition.Matches(raw).Count == 0, $"{name} still defines its own {helper}; use the one in Native/Cuda/Bf16.cuh");
                Assert.True(definition.Matches(assembled).Count == 1, $"the source NVRTC compiles for {name} defines {helper} {definition.Matches(assembled).Count} times, not once");
            }
            if (Uses.IsMatch(raw))
                Assert.Equal(new[] { SharedInclude }, IncludeLine.Matches(raw).Select(m => m.Value.Trim()));
            Assert.Empty(IncludeLine.Matches(assembled));                               // NVRTC gets no headers
            Assert.Contains(CudaModule.EmbeddedText("Bf16.cuh").TrimEnd(), assembled);  // the header's text, verbatim, in place of the include
            var at = raw.IndexOf(SharedInclude, StringComparison.Ordinal);
            Assert.StartsWith(raw[..at], assembled);                                    // what precedes the include is untouched
            Assert.EndsWith(raw[(at + SharedInclude.Length)..], assembled);             // and so is what follows it
            output.WriteLine($"{name}: {raw.Length} characters as written, {assembled.Length} as compiled");
        }
    }

    [Fact]
    public void TheKernelFamiliesCompileTheAssembledSources()
    {
        Assert.Equal(CudaModule.EmbeddedSource("SnceRows.cu"), FusedKernelRows.Source);
        Assert.Equal(CudaModule.EmbeddedSource("BlockKernels.cu"), BlockKernels.Source);
        Assert.Equal(CudaModule.EmbeddedSource("AdamWKernels.cu"), AdamWKernels.Source);
    }

    [Fact]
    public void AssemblyInlinesEachHeaderOnceAndRefusesIncludesNvrtcCannotResolve()
    {
        var files = new Dictionary<string, string>
        {
            ["k.cu"] = "AAA\n#include \"H.cuh\"\nBBB\n  #  include \"H.cuh\"\r\nCCC\n",
            ["H.cuh"] = "int h;\n",
            ["system.cu"] = "#include <cuda_fp16.h>\nint x;\n",
            ["nested.cu"] = "#include \"N.cuh\"\n",
            ["N.cuh"] = "#include \"H.cuh\"\n",
            ["missing.cu"] = "#include \"Gone.cuh\"\n",
        };
        string Read(string name) => files.TryGetValue(name, out var t) ? t : throw new FileNotFoundException($"no embedded file {name}");
        var k = CudaModule.Assemble("k.cu", Read);
        Assert.Single(Regex.Matches(k, "int h;"));
        Assert.Empty(IncludeLine.Matches(k));
        int At(string s) => k.IndexOf(s, StringComparison.Ordinal);
        Assert.True(At("AAA") < At("int h;") && At("int h;") < At("BBB") && At("BBB") < At("CCC"), k);   // in place of the first include

        var system = Assert.Throws<InvalidOperationException>(() => CudaModule.Assemble("system.cu", Read)).Message;
        Assert.Contains("system.cu", system);
        Assert.Contains("<cuda_fp16.h>", system);
        Assert.Contains("NVRTC", system);
        Assert.Contains("self-contained", Assert.Throws<InvalidOperationException>(() => CudaModule.Assemble("nested.cu", Read)).Message);
        Assert.Contains("Gone.cuh", Assert.Throws<FileNotFoundException>(() => CudaModule.Assemble("missing.cu", Read)).Message);
        Assert.Contains("expected one embedded CUDA file named 'Gone.cuh', found 0", Assert.Throws<InvalidOperationException>(() => CudaModule.EmbeddedText("Gone.cuh")).Message);
    }

    sealed class Made;
    sealed class Missing;
    sealed class Flaky;

    [Fact]
    public void TheLauncherCacheMakesEachLauncherOncePerDeviceAndRemembersWhyOneIsMissing()
    {
        var made = 0;
        Made Make() { made++; return new Made(); }
        var a = CudaModule.LauncherOrNull(901, Make);
        Assert.Same(a, CudaModule.LauncherOrNull(901, Make));
        Assert.Same(a, CudaModule.LauncherOrThrow(901, Make));
        Assert.Equal(1, made);
        Assert.NotSame(a, CudaModule.LauncherOrNull(902, Make));                 // per device
        Assert.Equal(2, made);

        var tried = 0;
        Missing Fail() { tried++; throw new SnceSetupException("libnvrtc.so not found: install the CUDA toolkit's NVRTC"); }
        Assert.Null(CudaModule.LauncherOrNull(901, Fail));
        var e = Assert.Throws<SnceSetupException>(() => CudaModule.LauncherOrThrow(901, Fail));
        Assert.Equal("libnvrtc.so not found: install the CUDA toolkit's NVRTC", e.Message);
        Assert.Equal(1, tried);                                                    // found missing once, then remembered

        // Anything else is a bug, not a missing library: it propagates and is not cached.
        var calls = 0;
        Flaky Broken() => ++calls == 1 ? throw new InvalidOperationException("bad launch shape") : new Flaky();
        Assert.Throws<InvalidOperationException>(() => CudaModule.LauncherOrNull(901, Broken));
        Assert.NotNull(CudaModule.LauncherOrNull(901, Broken));
        Assert.Equal(2, calls);
    }
}
