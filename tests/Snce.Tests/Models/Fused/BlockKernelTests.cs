using Snce.Native.Cuda;
using Snce.Models;
using Snce.Models.Fused;
using Snce.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Snce.Tests.Models.Fused;

/// <summary>Runs BlockKernels.cu on the CPU through <see cref="KernelEmulation"/> (g++), so the CUDA kernels' arithmetic is checked in CI.</summary>
sealed class BlockKernelEmulator : IKernelLauncher<BlockKernels.Args>
{
    readonly KernelEmulation emulation;

    public List<string> Kernels => emulation.Launched;

    BlockKernelEmulator(KernelEmulation emulation) => this.emulation = emulation;

    public static BlockKernelEmulator? Create(out string why) =>
        KernelEmulation.Load("blocks", BlockKernels.Source, "BlockKernels.cu", Path.Combine("Models", "Fused", "Emulation", "blocks_harness.cpp"), "emu_blocks_launch", out why)
            is { } e ? new BlockKernelEmulator(e) : null;

    public void Launch(string kernel, int grid, int block, ref BlockKernels.Args args) => emulation.Launch(kernel, grid, block, ref args);
}

/// <summary>
/// The fused block kernels (the CUDA default for RMSNorm, rotary q/k/v and the SwiGLU gate) against the libtorch path
/// they replace: the same module run both ways on the same inputs, outputs and every gradient compared.
/// </summary>
public class BlockKernelTests(ITestOutputHelper output)
{
    static BlockKernelEmulator Emulator()
    {
        var e = BlockKernelEmulator.Create(out var why);
        Assert.True(e is not null, $"the kernel emulator needs g++: {why}");
        return e!;
    }

    /// <summary>Runs <paramref name="f"/> on fresh leaf copies of <paramref name="inputs"/>, with or without the emulated kernels; returns the output and the input and parameter gradients.</summary>
    static List<Tensor> Run(nn.Module module, Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor upstream, IKernelLauncher<BlockKernels.Args>? launcher)
    {
        BlockKernels.UseLauncher(launcher);
        try
        {
            foreach (var p in module.parameters()) p.grad = null;
            var leaves = inputs.Select(t => t.detach().clone().requires_grad_(true)).ToArray();
            var y = f(leaves);
            (y * upstream).sum().backward();
            BlockKernels.ReleasePending();
            return [y.detach(), .. leaves.Select(l => l.grad!.clone()), .. module.parameters().Select(p => p.grad!.clone())];
        }
        finally { BlockKernels.UseLauncher(null); }
    }

    static void AssertClose(List<Tensor> reference, List<Tensor> fused, double tol)
    {
        Assert.Equal(reference.Count, fused.Count);
        for (var i = 0; i < reference.Count; i++)
        {
            var (r, f) = (reference[i].to_type(ScalarType.Float64), fused[i].to_type(ScalarType.Float64));
            Assert.Equal(r.shape, f.shape);
            var rel = ((f - r).norm() / (r.norm() + 1e-30)).item<double>();
            Assert.True(rel <= tol, $"output {i} (0 = value, then input and parameter gradients): relative error {rel:E2} > {tol:E1}");
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 1e-6)]
    [InlineData(ScalarType.BFloat16, 1e-2)]
    public void RmsNormMatchesTheLibtorchPath(ScalarType dtype, double tol)
    {
        using var scope = NewDisposeScope();
        var emu = Emulator();
        using var norm = new RmsNorm(40, 1e-5);
        if (dtype == ScalarType.BFloat16) norm.to(dtype);
        using (no_grad()) norm.parameters().First().copy_(rand(40, generator: new Generator(3)) + 0.5);
        var g = new Generator(1);
        var x = (randn([3, 7, 40], generator: g) * 2).to_type(dtype);     // 21 rows: the last block is partly empty
        var up = randn([3, 7, 40], generator: g).to_type(dtype);
        var reference = Run(norm, a => norm.forward(a[0]), [x], up, null);
        var fused = Run(norm, a => norm.forward(a[0]), [x], up, emu);
        Assert.Contains("rmsnorm_bwd_" + (dtype == ScalarType.Float32 ? "f32" : "bf16"), emu.Kernels);
        AssertClose(reference, fused, tol);
    }

    [Theory]
    [InlineData(ScalarType.Float32, 1e-6)]
    [InlineData(ScalarType.BFloat16, 1e-2)]
    public void SwiGluMatchesTheLibtorchPath(ScalarType dtype, double tol)
    {
        using var scope = NewDisposeScope();
        var emu = Emulator();
        var c = new TransformerConfig(Dim: 16, Layers: 1, Heads: 2, FfnMultipleOf: 8, InitStd: 0.3);
        using var ffn = new SwiGlu(c);
        if (dtype == ScalarType.BFloat16) ffn.to(dtype);
        var g = new Generator(2);
        var x = randn([2, 5, 16], generator: g).to_type(dtype);
        var up = randn([2, 5, 16], generator: g).to_type(dtype);
        var reference = Run(ffn, a => ffn.forward(a[0]), [x], up, null);
        var fused = Run(ffn, a => ffn.forward(a[0]), [x], up, emu);
        Assert.Contains(emu.Kernels, k => k.StartsWith("swiglu_bwd", StringComparison.Ordinal));
        AssertClose(reference, fused, tol);
    }

    [Theory]
    [InlineData(ScalarType.Float32, true, 0, 1e-5)]
    [InlineData(ScalarType.Float32, false, 0, 1e-5)]
    [InlineData(ScalarType.BFloat16, true, 0, 2e-2)]
    public void AttentionWithFusedRotaryMatchesTheLibtorchPath(ScalarType dtype, bool causal, long start, double tol)
    {
        using var scope = NewDisposeScope();
        var emu = Emulator();
        var c = new TransformerConfig(Dim: 16, Layers: 1, Heads: 2, InitStd: 0.3);
        using var attention = new Attention(c);
        if (dtype == ScalarType.BFloat16) attention.to(dtype);
        using var rope = new Rotary2d(prefix: 1, gridHeight: 2, gridWidth: 3, headDim: c.HeadDim, ropeBase: 100);
        var g = new Generator(4);
        var x = randn([2, 7, 16], generator: g).to_type(dtype);
        var up = randn([2, 7, 16], generator: g).to_type(dtype);
        var reference = Run(attention, a => attention.Forward(a[0], rope, causal, start), [x], up, null);
        var fused = Run(attention, a => attention.Forward(a[0], rope, causal, start), [x], up, emu);
        Assert.Contains(emu.Kernels, k => k.StartsWith("rope_bwd", StringComparison.Ordinal));
        AssertClose(reference, fused, tol);
    }

    [Fact]
    public void AWholeGeneratorStepMatchesTheLibtorchPath()
    {
        // Every fused op in a tiny generator at once, through the real model code: loss and all parameter gradients.
        using var scope = NewDisposeScope();
        var emu = Emulator();
        var config = new GeneratorConfig(GeneratorKind.Autoregressive, "tiny", GeneratorPresets.Tiny with { InitStd = 0.2 }, 32, 2, 2, 3);
        using var model = new TokenGenerator(config);
        var g = new Generator(5);
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn(p.shape, generator: g) * 0.1);   // the head starts at zero: give every path a gradient
        var tokens = randint(32, [4, 4], generator: g);
        var labels = randint(3, [4], generator: g);
        List<Tensor> Grads(IKernelLauncher<BlockKernels.Args>? l)
        {
            BlockKernels.UseLauncher(l);
            try
            {
                model.zero_grad();
                var logits = model.Forward(labels, tokens);
                nn.functional.cross_entropy(logits.reshape(-1, 32), randint(32, [logits.shape[0] * logits.shape[1]], generator: new Generator(6))).backward();
                BlockKernels.ReleasePending();
                return [logits.detach(), .. model.parameters().Select(p => p.grad!.clone())];
            }
            finally { BlockKernels.UseLauncher(null); }
        }
        var reference = Grads(null);
        var fused = Grads(emu);
        Assert.True(emu.Kernels.Count >= 3 * GeneratorPresets.Tiny.Layers, $"only {emu.Kernels.Count} fused launches");
        AssertClose(reference, fused, 1e-5);
    }

    [Fact]
    public void TheCpuKeepsTheLibtorchPath()
    {
        using var x = randn(4, 8);
        Assert.Null(BlockKernels.For(x));                       // no override, CPU tensor: the exact CPU path (and resume) stays
        using var i = ones(4, dtype: ScalarType.Int64);
        Assert.Null(BlockKernels.For(i));
    }

    [Fact]
    public void KernelSourceCompilesToPtxWithTheArgumentLayoutCSharpPasses()
    {
        // A syntax and type check of the source NVRTC gets (the shared Bf16.cuh inlined) as CUDA, by clang's NVPTX back end
        // (no CUDA toolkit), and the size of BlockArgs the C# mirror passes.
        var prelude = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Losses", "Fused", "Emulation", "clang_prelude.h"));
        const string math = """
            extern "C" __device__ float __nv_expf(float);
            __device__ inline float expf(float x) { return __nv_expf(x); }
            __device__ inline float sqrtf(float x) { return __nvvm_sqrt_rn_f(x); }
            """;
        var dir = Directory.CreateTempSubdirectory("snce-blocks-ptx-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "k.cu"), prelude + "\n" + math + "\n" + BlockKernels.Source);
            var (code, log) = KernelEmulation.Run("clang-14", dir, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib", "--cuda-gpu-arch=sm_80",
                "-Xclang", "-target-feature", "-Xclang", "+ptx70", "-O2", "-S", "-Wno-pass-failed", "k.cu", "-o", "k.ptx");
            if (code == -1) { output.WriteLine("not run: clang-14 not found"); return; }
            Assert.True(code == 0, log);
            var ptx = File.ReadAllText(Path.Combine(dir, "k.ptx"));
            foreach (var op in new[] { "rmsnorm_fwd", "rmsnorm_bwd", "rope_fwd", "rope_bwd", "swiglu_fwd", "swiglu_bwd" })
                foreach (var t in new[] { "f32", "bf16" })
                    Assert.Contains($".param .align 8 .b8 {op}_{t}_param_0[152]", ptx);
            Assert.Equal(152, System.Runtime.InteropServices.Marshal.SizeOf<BlockKernels.Args>());
        }
        finally { Directory.Delete(dir, true); }
    }
}
