using Snce.Losses;
using Snce.Losses.Fused;
using Snce.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

/// <summary>
/// The CUDA kernel's source, run on the CPU through <see cref="KernelEmulator"/>, against the libtorch row step, through
/// the whole fused engine: dtypes, modes (hard, dense, top-k), masks, weights, tails (K not a multiple of the vector
/// width), misaligned rows (row strides that break 16-byte alignment), one and several warps per block.
/// On the GPU the benchmark repeats this comparison before timing.
/// </summary>
public class FusedKernelEmulationTests(ITestOutputHelper output)
{
    private static LossOutput Run(FusedCase c, IRowKernel rows, TargetKind kind, int topK, FusedOptions options, bool linear, Tensor? logits = null) =>
        FusedEngine.Run(new FusedProblem
        {
            Hidden = linear ? c.Hidden : null, Weight = linear ? c.Weight : null, Bias = linear ? c.Bias : null, Logits = linear ? null : logits,
            Tokens = c.Tokens, Mask = c.Mask, Weights = c.RowWeights, Kind = kind, TopK = topK,
            Anchors = c.Anchors, Codebook = c.Codebook, Metric = c.Metric, Tau = c.Tau, Options = options,
        }, rows);

    [Theory]
    // kind, metric, K, compute dtype, threads
    [InlineData("dense", "l2", 37, ScalarType.Float32, 32)]
    [InlineData("dense", "dot", 40, ScalarType.Float32, 64)]
    [InlineData("topk", "cosine", 37, ScalarType.Float32, 64)]
    [InlineData("hard", "l2", 37, ScalarType.Float32, 32)]
    [InlineData("dense", "l2", 40, ScalarType.BFloat16, 64)]
    [InlineData("dense", "dot", 37, ScalarType.BFloat16, 32)]
    [InlineData("topk", "l2", 40, ScalarType.BFloat16, 32)]
    [InlineData("hard", "dot", 40, ScalarType.BFloat16, 64)]
    [InlineData("topk-rowstep", "l2", 37, ScalarType.Float32, 32)]
    [InlineData("topk-rowstep", "cosine", 40, ScalarType.BFloat16, 64)]
    [InlineData("topk-rowstep", "dot", 37, ScalarType.BFloat16, 32)]
    public void LinearFormKernelMatchesTorchRows(string target, string metric, int k, ScalarType dtype, int threads)
    {
        var emu = KernelEmulator.Create(out var why);
        if (emu is null) { output.WriteLine($"not run: {why}"); return; }
        var kind = Kind(target);
        using var c = FusedCase.Make(metric, n: 9, k: k);
        using var scope = NewDisposeScope();
        var options = new FusedOptions { RowChunk = 4, CodeChunk = 16, ComputeDtype = dtype,
            TopKSearch = target == "topk-rowstep" ? TopKSearch.RowStep : TopKSearch.Full };
        var topK = kind == TargetKind.TopK ? 5 : 0;
        var expected = Capture(c, () => Run(c, TorchRows.Instance, kind, topK, options, linear: true));
        var actual = Capture(c, () => Run(c, new FusedKernelRows(emu, threads), kind, topK, options, linear: true));
        Compare(expected, actual, dtype);
        Assert.Equal(0, emu.Misaligned);
        Assert.NotEmpty(emu.Kernels);
        output.WriteLine(string.Join(", ", emu.Kernels.Distinct()));
    }

    [Theory]
    // metric, anchors (latent: near codes; code: the token's code), target, threads, the kernel as before issue 12
    [InlineData("l2", "latent", "topk-rowstep", 32, false)]
    [InlineData("dot", "latent", "topk-rowstep", 64, false)]
    [InlineData("l2", "code", "topk-rowstep", 64, false)]
    [InlineData("dot", "code", "topk-rowstep", 32, false)]
    [InlineData("l2", "latent", "topk-rowstep", 32, true)]
    [InlineData("dot", "code", "topk-rowstep", 64, true)]
    [InlineData("l2", "code", "dense", 32, false)]
    [InlineData("dot", "latent", "dense", 64, false)]
    [InlineData("l2", "latent", "hard", 32, false)]
    [InlineData("dot", "latent", "dense", 64, true)]
    [InlineData("l2", "code", "hard", 32, true)]
    public void KernelMatchesTheFloat64ReferenceAndTorchRows(string metric, string anchors, string target, int threads, bool previous)
    {
        var emu = KernelEmulator.Create(out var why);
        if (emu is null) { output.WriteLine($"not run: {why}"); return; }
        var kind = Kind(target);
        // 13 rows in blocks of 5 (masked rows and weights), K = 45: not a multiple of the vector width.
        using var c = FusedCase.Make(metric, n: 13, k: 45);
        if (anchors == "code") c.Anchors = c.Codebook.index_select(0, c.Tokens);
        using var scope = NewDisposeScope();
        var options = new FusedOptions { RowChunk = 5, CodeChunk = 16, ComputeDtype = ScalarType.Float32,
            TopKSearch = target == "topk-rowstep" ? TopKSearch.RowStep : TopKSearch.Full };
        int? topK = kind == TargetKind.TopK ? 5 : null;
        var kernel = new FusedKernelRows(emu, threads, previous);
        var actual = c.FusedLinear(topK, options, soft: kind != TargetKind.Hard, run: p => FusedEngine.Run(p, kernel));
        Assert.Contains(emu.Kernels, n => n.Contains("topk") == (target == "topk-rowstep"));
        var torch = c.FusedLinear(topK, options, soft: kind != TargetKind.Hard, run: p => FusedEngine.Run(p, TorchRows.Instance));
        FusedCase.AssertClose(c.Reference(topK, soft: kind != TargetKind.Hard), actual, 1e-5);
        FusedCase.AssertClose(torch, actual, 1e-5);
        Assert.Equal(0, emu.Misaligned);
    }

    [Theory]
    // K, top-k, whether the kernel can select (K ≥ 8k or K ≤ 2,048 − k)
    [InlineData(40, 5, true)]
    [InlineData(2000, 5, true)]
    [InlineData(1100, 200, false)]
    public void AutoTopKSearchSelectsInTheKernelWhereItCanAndMatchesFull(int k, int topK, bool rowStep)
    {
        var emu = KernelEmulator.Create(out var why);
        if (emu is null) { output.WriteLine($"not run: {why}"); return; }
        using var c = FusedCase.Make("l2", n: 6, k: k);
        using var scope = NewDisposeScope();
        var auto = new FusedOptions { RowChunk = 3, ComputeDtype = ScalarType.Float32, TopKSearch = TopKSearch.Auto };
        var a = Capture(c, () => Run(c, new FusedKernelRows(emu, 128), TargetKind.TopK, topK, auto, linear: true));
        Assert.Equal(rowStep, emu.Kernels.Any(n => n.Contains("topk")));
        // Whichever search Auto chose, the loss is the one Full computes on the libtorch backend.
        var full = Capture(c, () => Run(c, TorchRows.Instance, TargetKind.TopK, topK, auto with { TopKSearch = TopKSearch.Full }, linear: true));
        Compare(full, a, ScalarType.Float32);
        // The libtorch backend has no kernel selection: Auto is Full there.
        var torchAuto = Capture(c, () => Run(c, TorchRows.Instance, TargetKind.TopK, topK, auto, linear: true));
        Compare(full, torchAuto, ScalarType.Float64);
    }

    [Theory]
    // logits dtype, compute (score) dtype, kind; logits are a view with row stride K + 3 (misaligned rows)
    [InlineData(ScalarType.Float32, ScalarType.BFloat16, "dense")]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32, "dense")]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16, "topk")]
    [InlineData(ScalarType.Float32, ScalarType.Float32, "hard")]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32, "topk-rowstep")]
    public void LogitsFormKernelMatchesTorchRowsOnStridedViews(ScalarType logitsDtype, ScalarType computeDtype, string target)
    {
        var emu = KernelEmulator.Create(out var why);
        if (emu is null) { output.WriteLine($"not run: {why}"); return; }
        var kind = Kind(target);
        using var c = FusedCase.Make("l2", n: 7, k: 45);
        using var scope = NewDisposeScope();
        var wide = randn([7, 48], generator: new Generator(9)).to(logitsDtype) * 2;
        var options = new FusedOptions { RowChunk = 3, CodeChunk = 10, ComputeDtype = computeDtype,
            TopKSearch = target == "topk-rowstep" ? TopKSearch.RowStep : TopKSearch.Full };
        var topK = kind == TargetKind.TopK ? 4 : 0;
        (double[] Values, Tensor Grad) Once(IRowKernel rows)
        {
            var logits = wide.narrow(1, 0, 45).detach().requires_grad_(); // a non-contiguous leaf: row stride 48
            var o = Run(c, rows, kind, topK, options, linear: false, logits);
            o.Loss.backward();
            return ([o.Loss.Double(), o.HardCe.Double(), o.TargetEntropy?.Double() ?? 0], logits.grad!.clone());
        }
        var (ev, eg) = Once(TorchRows.Instance);
        var (av, ag) = Once(new FusedKernelRows(emu, 64));
        for (var i = 0; i < 3; i++) Assert.True(Math.Abs(ev[i] - av[i]) <= 1e-4 * Math.Max(1, Math.Abs(ev[i])), $"value {i}: kernel {av[i]} vs torch {ev[i]}");
        var tol = logitsDtype == ScalarType.BFloat16 ? 1e-2 * eg.abs().max().Double() : 1e-6;
        FusedCase.AssertGrad("logits", eg, ag, tol);
        Assert.Equal(0, emu.Misaligned);
    }

    [Fact]
    public void KernelStatisticsAndInPlaceGradientOnOneBlock()
    {
        var emu = KernelEmulator.Create(out var why);
        if (emu is null) { output.WriteLine($"not run: {why}"); return; }
        using var scope = NewDisposeScope();
        var g = new Generator(5);
        var logits = randn([6, 333], generator: g) * 4;
        var raw = randn([6, 333], generator: g) * 3;
        var tokens = randint(333, [6], generator: g);
        var mask = tensor(new[] { true, false, true, true, true, true });
        var coef = rand([6], generator: g);
        RowBlock Block(Tensor l, Tensor? grad) => new(l, grad, new RowTarget.Dense((c0, len) => raw.narrow(1, c0, len)), tokens, coef, mask, 0.7, ScalarType.Float32, 50);
        var expectedGrad = empty_like(logits);
        var expected = TorchRows.Instance.Run(Block(logits, expectedGrad));
        var inPlace = logits.clone();
        var actual = new FusedKernelRows(emu, 128).Run(Block(inPlace, inPlace));
        FusedCase.AssertGrad("stats", expected, actual, 1e-4);
        FusedCase.AssertGrad("gradient in place", expectedGrad, inPlace, 1e-6);
        Assert.Equal(0.0, inPlace[1].abs().max().Double()); // masked row
        // 32 threads: 83 vectors of 4 and a tail of 1 per row, so each thread walks several vectors in pass 2 (in reverse
        // by default, forward in the previous kernel): the same gradient either way.
        foreach (var previous in new[] { false, true })
        {
            var narrow = logits.clone();
            var s32 = new FusedKernelRows(emu, 32, previous).Run(Block(narrow, narrow));
            FusedCase.AssertGrad($"stats, 32 threads, previous {previous}", expected, s32, 1e-4);
            FusedCase.AssertGrad($"gradient, 32 threads, previous {previous}", expectedGrad, narrow, 1e-6);
        }
        // Statistics only: no gradient written, same statistics.
        var untouched = logits.clone();
        var statsOnly = new FusedKernelRows(emu, 32).Run(Block(untouched, null));
        FusedCase.AssertGrad("stats only", expected, statsOnly, 1e-4);
        Assert.True((untouched == logits).all().item<bool>());
    }

    [Fact]
    public void KernelSourceCompilesToPtxWithClang()
    {
        var here = Path.Combine(AppContext.BaseDirectory, "Losses", "Fused", "Emulation");
        var dir = Directory.CreateTempSubdirectory("snce-ptx-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "k.cu"), File.ReadAllText(Path.Combine(here, "clang_prelude.h")) + "\n" + FusedKernelRows.Source);
            var (code, log) = KernelEmulation.Run("clang-14", dir, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib", "--cuda-gpu-arch=sm_80",
                "-Xclang", "-target-feature", "-Xclang", "+ptx70", "-O2", "-S", "-Wno-pass-failed", "k.cu", "-o", "k.ptx");
            if (code == -1) { output.WriteLine("not run: clang-14 not found"); return; }
            Assert.True(code == 0, log);
            var ptx = File.ReadAllText(Path.Combine(dir, "k.ptx"));
            foreach (var entry in new[] { "snce_rows_bf16_bf16", "snce_rows_bf16_f32", "snce_rows_f32_bf16", "snce_rows_f32_f32",
                         "snce_rows_topk_bf16_bf16", "snce_rows_topk_bf16_f32", "snce_rows_topk_f32_bf16", "snce_rows_topk_f32_f32" })
                Assert.Contains($".entry {entry}(", ptx);
            Assert.Contains(".param .align 8 .b8 snce_rows_topk_f32_f32_param_0[120]", ptx);
            Assert.Contains(".param .align 8 .b8 snce_rows_f32_f32_param_0[120]", ptx); // the RowArgs layout C# passes
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    // logits dtype, score dtype, the kernel as before issue 12 (top-k from the threads' maxima, always a gather; pass 2 forward)
    [InlineData(ScalarType.Float32, ScalarType.Float32, false)]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16, false)]
    [InlineData(ScalarType.BFloat16, ScalarType.Float32, false)]
    [InlineData(ScalarType.Float32, ScalarType.Float32, true)]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16, true)]
    public void KernelSelectsTopKFromTheScoresLikeTorchRows(ScalarType logitsDtype, ScalarType scoreDtype, bool previous)
    {
        var emu = KernelEmulator.Create(out var why);
        if (emu is null) { output.WriteLine($"not run: {why}"); return; }
        using var scope = NewDisposeScope();
        const int rows = 4, k = 20000, top = 20, threads = 32;
        var g = new Generator(11);
        var logits = randn([rows, k], generator: g).to(logitsDtype);
        // Scores ≤ 4 except 20 per row at 5, 5.25, …, 9.75 (exact in bf16) at random codes: a unique top-k, which the
        // threads' 4 candidates from pass 1 certify (no thread holds more than 4 of them).
        var raw = (randn([rows, k], generator: g) * 2).clamp_max(4);
        for (var r = 0; r < rows; r++)
            raw[r].index_put_(arange(top, dtype: ScalarType.Float32) * 0.25 + 5, randperm(k, generator: g).narrow(0, 0, top));
        // Thread t reads vectors t, t + threads, … of the row.
        var width = RowLaunch.VectorWidth(logitsDtype, scoreDtype);
        var owner = arange(k, dtype: ScalarType.Int64).div(width, rounding_mode: RoundingMode.floor).remainder(threads);
        // Row 1: the codes of the first 4 threads score in [5, 20], twenty of them 30 … 49, the rest ≤ 4. Those threads'
        // 16 candidates are fewer than 20, so the 20th largest candidate (and the 20th largest thread maximum) is ≤ 4, and
        // 2,500 scores lie above it, more than the 2,028 free slots: the kernel must gather and raise its threshold by
        // bisection to keep codes 30 … 49.
        var early = (owner < 4).nonzero().reshape(-1);
        raw[1].index_put_((rand(early.shape[0], generator: g) * 15 + 5).to(ScalarType.Float32), early);
        var best1 = early.index_select(0, randperm(early.shape[0], generator: g).narrow(0, 0, top));
        raw[1].index_put_(arange(top, dtype: ScalarType.Float32) + 30, best1);
        // Row 3: thread 0 owns 5 of the 20 largest scores, one more than it keeps: its 4th candidate exceeds the 20th
        // largest candidate, the certificate fails and the gather (no bisection: 20 scores above) must find the fifth.
        var row3 = raw[3];
        row3.clamp_max_(4);
        var mine = (owner == 0).nonzero().reshape(-1);
        var others = (owner != 0).nonzero().reshape(-1);
        var best3 = cat([mine.index_select(0, randperm(mine.shape[0], generator: g).narrow(0, 0, 5)),
            others.index_select(0, randperm(others.shape[0], generator: g).narrow(0, 0, top - 5))]);
        row3.index_put_(arange(top, dtype: ScalarType.Float32) * 0.25 + 5, best3);
        raw = raw.to(scoreDtype);
        var tokens = randint(k, [rows], generator: g);
        var mask = tensor(new[] { true, true, false, true });
        var coef = rand([rows], generator: g);
        RowBlock Block(Tensor l, Tensor? grad) => new(l, grad, new RowTarget.TopOfScores((c0, len) => raw.narrow(1, c0, len), top), tokens, coef, mask,
            8.0, ScalarType.Float32, 700);
        var expectedGrad = empty_like(logits);
        var expected = TorchRows.Instance.Run(Block(logits, expectedGrad));
        var inPlace = logits.clone();
        var actual = new FusedKernelRows(emu, threads, previous).Run(Block(inPlace, inPlace));
        FusedCase.AssertGrad("stats", expected, actual, 1e-4);
        var tol = (logitsDtype == ScalarType.BFloat16 ? 1e-2 : 4e-6) * expectedGrad.abs().max().Double();
        FusedCase.AssertGrad("gradient in place", expectedGrad, inPlace, tol);
        // Rows 1 and 3: their targets' gradient carries −q (τ = 8: q ≥ 0.01 there, softmax(l) < 1e-3).
        foreach (var (r, best) in new[] { (1, best1), (3, best3) })
        {
            var picked = inPlace[r].to(ScalarType.Float32).topk(top, largest: false).indexes.sort().Values;
            Assert.True((picked == best.sort().Values).all().item<bool>(), $"row {r} selected {string.Join(", ", picked.data<long>().ToArray())}");
        }
        Assert.Equal(0, emu.Misaligned);
    }

    static TargetKind Kind(string name) => name switch
    {
        "hard" => TargetKind.Hard, "dense" => TargetKind.Dense, "topk" or "topk-rowstep" => TargetKind.TopK,
        _ => throw new ArgumentException(name),
    };

    sealed record Captured(double Loss, double HardCe, double? Entropy, Tensor[] Grads);

    static Captured Capture(FusedCase c, Func<LossOutput> run)
    {
        foreach (var t in new[] { c.Hidden, c.Weight, c.Bias }) t.grad?.zero_();
        var o = run();
        o.Loss.backward();
        return new Captured(o.Loss.Double(), o.HardCe.Double(), o.TargetEntropy?.Double(),
            [c.Hidden.grad!.clone(), c.Weight.grad!.clone(), c.Bias.grad!.clone()]);
    }

    static void Compare(Captured e, Captured a, ScalarType dtype)
    {
        var tol = dtype == ScalarType.BFloat16 ? 2e-3 : 1e-5;
        Assert.True(Math.Abs(e.Loss - a.Loss) <= tol * Math.Max(1, Math.Abs(e.Loss)), $"loss: kernel {a.Loss} vs torch {e.Loss}");
        Assert.True(Math.Abs(e.HardCe - a.HardCe) <= tol * Math.Max(1, Math.Abs(e.HardCe)), $"hard CE: kernel {a.HardCe} vs torch {e.HardCe}");
        Assert.Equal(e.Entropy is null, a.Entropy is null);
        if (e.Entropy is double h) Assert.True(Math.Abs(h - a.Entropy!.Value) <= tol, $"H(q): kernel {a.Entropy} vs torch {h}");
        string[] names = ["hidden", "weight", "bias"];
        for (var i = 0; i < 3; i++)
        {
            // bf16: both write the gradient in bf16; fp32 evaluation orders differ, so allow a few bf16 ulps of the largest entry.
            var gtol = dtype == ScalarType.BFloat16 ? 2e-2 * e.Grads[i].abs().max().Double() : 1e-5;
            FusedCase.AssertGrad(names[i], e.Grads[i], a.Grads[i], gtol);
        }
    }
}
