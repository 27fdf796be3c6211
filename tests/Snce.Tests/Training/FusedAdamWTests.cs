using Snce.Native.Cuda;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using Snce.Training.Fused;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>Runs AdamWKernels.cu on the CPU through <see cref="KernelEmulation"/> (g++), so the fused optimizer step's arithmetic is checked in CI.</summary>
sealed class AdamWKernelEmulator : IKernelLauncher<AdamWKernels.Args>
{
    readonly KernelEmulation emulation;

    public List<string> Kernels => emulation.Launched;

    AdamWKernelEmulator(KernelEmulation emulation) => this.emulation = emulation;

    public static AdamWKernelEmulator? Create(out string why) =>
        KernelEmulation.Load("adamw", AdamWKernels.Source, "AdamWKernels.cu", Path.Combine("Training", "Emulation", "adamw_harness.cpp"), "emu_adamw_launch", out why)
            is { } e ? new AdamWKernelEmulator(e) : null;

    public void Launch(string kernel, int grid, int block, ref AdamWKernels.Args args) => emulation.Launch(kernel, grid, block, ref args);
}

/// <summary>
/// The fused optimizer step (the CUDA default: norm, clip, AdamW by decay group, bf16 weight copy, EMA) against the
/// libtorch path it replaces (<see cref="FlatAdamW"/> + clip + <see cref="Ema"/>) on the same gradients over several
/// steps of a warmup-cosine schedule, and against a float64 AdamW written out here.
/// </summary>
public class FusedAdamWTests(ITestOutputHelper output)
{
    static AdamWKernelEmulator Emulator()
    {
        var e = AdamWKernelEmulator.Create(out var why);
        Assert.True(e is not null, $"the kernel emulator needs g++: {why}");
        return e!;
    }

    static readonly LrSchedule Schedule = new(BaseLr: 0.05, WarmupSteps: 2, TotalSteps: 6);

    /// <summary>Four parameters, decay and no-decay interleaved (FlatParameters puts the decay group first), sizes off the 64-element alignment: 1,237 elements, 6 blocks of 256.</summary>
    static FlatParameters Flat(ScalarType dtype)
    {
        var g = new Generator(11);
        Parameter P(params long[] shape) => new(randn(shape, generator: g).to_type(dtype));
        return new FlatParameters([("a.weight", P(33, 17), true), ("a.bias", P(45), false), ("b.weight", P(7, 90), true), ("b.scale", P(2, 50), false)]);
    }

    /// <summary>Gradients of step <paramref name="step"/>, written through the parameters' .grad views (the padding stays zero, as under autograd).</summary>
    static void FillGrads(FlatParameters flat, int step, double scale)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(100 + (ulong)step);
        foreach (var s in flat.Slots) s.Parameter.grad!.copy_(randn(s.Shape, generator: g) * scale);
    }

    sealed record Run(Tensor Master, Tensor Values, Tensor ExpAvg, Tensor ExpAvgSq, Tensor Ema, Tensor Norms, long Steps);

    static Run Train(ScalarType dtype, AdamWOptions o, bool withEma, IKernelLauncher<AdamWKernels.Args>? launcher, int steps, double gradScale)
    {
        AdamWKernels.UseLauncher(launcher);
        try
        {
            using var flat = Flat(dtype);
            using var adam = new FlatAdamW(flat, o);
            using var ema = new Ema(flat.Master, 0.8);
            var norms = new List<Tensor>();
            for (var step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                FillGrads(flat, step, gradScale);
                norms.Add(adam.Step(Schedule.At(step), withEma ? ema : null).reshape(1).MoveToOuterDisposeScope());
            }
            return new Run(flat.Master.clone(), flat.Values.clone(), adam.ExpAvg.clone(), adam.ExpAvgSq.clone(), ema.Values.clone(), norms.Count > 0 ? cat(norms) : zeros(0), adam.Steps);
        }
        finally { AdamWKernels.UseLauncher(null); }
    }

    static double Rel(Tensor f, Tensor r)
    {
        var (a, b) = (f.to_type(ScalarType.Float64), r.to_type(ScalarType.Float64));
        return ((a - b).norm() / (b.norm() + 1e-30)).item<double>();
    }

    [Theory]
    // dtype, max grad norm (the gradients' norm ≈ 35·scale), whether it clips, gradient scale, EMA, weight decay
    [InlineData(ScalarType.Float32, 1.0, true, 1.0, true, 0.5)]           // clipping active
    [InlineData(ScalarType.Float32, 1000.0, false, 1.0, true, 0.5)]       // clipping configured, inactive
    [InlineData(ScalarType.Float32, 0.0, false, 1.0, false, 0.5)]         // no clipping, no EMA
    [InlineData(ScalarType.Float32, 0.0, false, 1e-7, true, 0.0)]         // tiny gradients (ε is ~10 % of the denominator), no weight decay
    [InlineData(ScalarType.BFloat16, 1.0, true, 1.0, true, 0.5)]
    [InlineData(ScalarType.BFloat16, 1000.0, false, 1.0, true, 0.5)]
    public void FusedStepsMatchTheLibtorchPath(ScalarType dtype, double maxGradNorm, bool clips, double gradScale, bool withEma, double weightDecay)
    {
        using var scope = NewDisposeScope();
        var emu = Emulator();
        var o = new AdamWOptions(0.9, 0.95, 1e-8, weightDecay, maxGradNorm);
        const int steps = 5;
        var reference = Train(dtype, o, withEma, null, steps, gradScale);
        var fused = Train(dtype, o, withEma, emu, steps, gradScale);

        var suffix = dtype == ScalarType.Float32 ? "f32" : "bf16";
        Assert.Equal(["adamw_sumsq_" + suffix, "adamw_update_" + suffix], emu.Kernels.Take(2));
        Assert.Equal(2 * steps, emu.Kernels.Count);
        Assert.Equal(steps, reference.Steps);
        Assert.Equal(reference.Steps, fused.Steps);
        var normMin = reference.Norms.min().item<float>();
        var normMax = reference.Norms.max().item<float>();
        if (clips) Assert.True(normMin > maxGradNorm, $"clipping should be active: norms {normMin}..{normMax}");
        else if (maxGradNorm > 0) Assert.True(normMax < maxGradNorm, $"clipping should be inactive: norms {normMin}..{normMax}");
        foreach (var (what, f, r) in new[]
                 {
                     ("norm", fused.Norms, reference.Norms), ("master", fused.Master, reference.Master),
                     ("m", fused.ExpAvg, reference.ExpAvg), ("v", fused.ExpAvgSq, reference.ExpAvgSq), ("ema", fused.Ema, reference.Ema),
                 })
        {
            var rel = Rel(f, r);
            output.WriteLine($"{what}: relative error {rel:E2}");
            Assert.True(rel <= 1e-6, $"{what}: relative error {rel:E2} > 1e-6");
        }
        // The model's weights are the master rounded to the model dtype, as SyncValuesFromMaster makes them.
        Assert.True((fused.Values == fused.Master.to_type(dtype)).all().item<bool>(), "values are not the rounded master weights");
        if (!withEma) Assert.True((fused.Ema == Train(dtype, o, false, null, 0, gradScale).Ema).all().item<bool>(), "the EMA moved without being handed to the step");
    }

    [Fact]
    public void FusedStepsMatchAFloat64AdamWWithBiasCorrectionAndDecayGroups()
    {
        // An independent reference: AdamW written out in float64 (no clipping), lr from the schedule at steps 0..4, t = 1..5.
        using var scope = NewDisposeScope();
        var emu = Emulator();
        const double b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.5;
        const int steps = 5;
        var fused = Train(ScalarType.Float32, new AdamWOptions(b1, b2, eps, wd, MaxGradNorm: 0), true, emu, steps, 1.0);

        using var flat = Flat(ScalarType.Float32);
        var p = flat.Master.to_type(ScalarType.Float64);
        var e = p.clone();
        var m = zeros_like(p);
        var v = zeros_like(p);
        var decay = (arange(flat.Size) < flat.DecayElements).to_type(ScalarType.Float64);
        for (var t = 1; t <= steps; t++)
        {
            FillGrads(flat, t - 1, 1.0);
            var g = flat.Grads.to_type(ScalarType.Float64);
            var lr = Schedule.At(t - 1);
            p = p * (1 - lr * wd * decay);
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * g * g;
            var mHat = m / (1 - Math.Pow(b1, t));
            var vHat = v / (1 - Math.Pow(b2, t));
            p = p - lr * mHat / (vHat.sqrt() + eps);
            e = 0.8 * e + 0.2 * p;
        }
        Assert.Equal(steps, fused.Steps);
        Assert.True(Rel(fused.Master, p) <= 1e-6, $"master: relative error {Rel(fused.Master, p):E2}");
        Assert.True(Rel(fused.ExpAvg, m) <= 1e-6, $"m: relative error {Rel(fused.ExpAvg, m):E2}");
        Assert.True(Rel(fused.ExpAvgSq, v) <= 1e-6, $"v: relative error {Rel(fused.ExpAvgSq, v):E2}");
        Assert.True(Rel(fused.Ema, e) <= 1e-6, $"ema: relative error {Rel(fused.Ema, e):E2}");
        // The alignment padding between slots (zero weights, zero gradients) stays zero.
        var padding = ones(flat.Size);
        foreach (var s in flat.Slots) padding.narrow(0, s.Offset, s.Count).zero_();
        Assert.True(padding.sum().item<float>() > 0, "the fixture should have padding");
        Assert.Equal(0f, (fused.Master * padding).abs().sum().item<float>());
    }

    [Fact]
    public void ATrainerStepsThroughTheFusedKernelsLikeTheLibtorchPath()
    {
        // The trainer hands the EMA to the step: with the kernels, the EMA is updated by them and not a second time.
        using var scope = NewDisposeScope();
        var emu = Emulator();
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var cfg = GeneratorFixtures.Training(steps: 10);
        (Tensor Master, Tensor Ema) Steps(IKernelLauncher<AdamWKernels.Args>? launcher, string run)
        {
            AdamWKernels.UseLauncher(launcher);
            try
            {
                using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir[run], cfg));
                for (var i = 0; i < 2; i++) trainer.TrainStep();
                return (trainer.Parameters.Master.clone(), trainer.EmaValues.clone());
            }
            finally { AdamWKernels.UseLauncher(null); }
        }
        var reference = Steps(null, "libtorch");
        var fused = Steps(emu, "fused");
        Assert.Equal(4, emu.Kernels.Count);
        Assert.True(Rel(fused.Master, reference.Master) <= 1e-6, $"master: relative error {Rel(fused.Master, reference.Master):E2}");
        Assert.True(Rel(fused.Ema, reference.Ema) <= 1e-6, $"ema: relative error {Rel(fused.Ema, reference.Ema):E2}");
    }

    [Fact]
    public void TheFusedStepLeavesNoTensorsBehind()
    {
        var emu = Emulator();
        using var flat = Flat(ScalarType.BFloat16);
        using var adam = new FlatAdamW(flat, new AdamWOptions());
        using var ema = new Ema(flat.Master, 0.9);
        FillGrads(flat, 0, 1.0);
        AdamWKernels.UseLauncher(emu);
        try { LeakCheck.AssertNoLeak(() => adam.Step(1e-3, ema).Dispose(), what: "fused AdamW step"); }
        finally { AdamWKernels.UseLauncher(null); }
        Assert.True(emu.Kernels.Count >= 2);
    }

    [Fact]
    public void TheCpuKeepsTheLibtorchPath()
    {
        using var flat = Flat(ScalarType.Float32);
        Assert.Equal(Environment.GetEnvironmentVariable("SNCE_FUSED_OPTIMIZER") != "0", FusedOptimizer.Enabled);   // on by default (CUDA only)
        Assert.Null(AdamWKernels.For(flat));                    // enabled or not, CPU buffers: the exact CPU path (and resume) stays
    }

    [Fact]
    public void TheEmaMustTrackTheMasterWeights()
    {
        using var flat = Flat(ScalarType.Float32);
        using var adam = new FlatAdamW(flat, new AdamWOptions());
        using var other = zeros(flat.Size);
        using var ema = new Ema(other, 0.9);
        var e = Assert.Throws<ArgumentException>(() => adam.Step(1e-3, ema));
        Assert.Contains("master", e.Message);
    }

    [Fact]
    public void KernelSourceCompilesToPtxWithTheArgumentLayoutCSharpPasses()
    {
        // A syntax and type check of the NVRTC source as CUDA (clang's NVPTX back end, no CUDA toolkit), and the size of AdamWArgs.
        var prelude = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Losses", "Fused", "Emulation", "clang_prelude.h"));
        var dir = Directory.CreateTempSubdirectory("snce-adamw-ptx-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "k.cu"), prelude + "\n__device__ inline float sqrtf(float x) { return __nvvm_sqrt_rn_f(x); }\n" + AdamWKernels.Source);
            var (code, log) = KernelEmulation.Run("clang-14", dir, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib", "--cuda-gpu-arch=sm_80",
                "-Xclang", "-target-feature", "-Xclang", "+ptx70", "-O2", "-S", "-Wno-pass-failed", "k.cu", "-o", "k.ptx");
            if (code == -1) { output.WriteLine("not run: clang-14 not found"); return; }
            Assert.True(code == 0, log);
            var ptx = File.ReadAllText(Path.Combine(dir, "k.ptx"));
            foreach (var k in new[] { "adamw_sumsq_f32", "adamw_sumsq_bf16", "adamw_update_f32", "adamw_update_bf16" })
                Assert.Contains($".param .align 8 .b8 {k}_param_0[128]", ptx);
            Assert.Equal(128, System.Runtime.InteropServices.Marshal.SizeOf<AdamWKernels.Args>());
        }
        finally { Directory.Delete(dir, true); }
    }
}
