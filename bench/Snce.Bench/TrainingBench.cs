using System.Diagnostics;
using Snce.Data;
using Snce.Diagnostics;
using Snce.Losses;
using Snce.Models;
using Snce.Objectives;
using Snce.Sampling;
using Snce.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Bench;

/// <summary>
/// Generator training step time and sampling throughput (the same shapes as tools/bench_training.py):
/// the full Snce trainer step (flat-buffer AdamW, clipping, EMA, metrics) per precision, a plain TorchSharp step
/// with its per-parameter AdamW for reference, model FLOPs utilization, and images/s of AR sampling with and
/// without the KV cache and masked sampling with 8 and 16 steps.
/// </summary>
public static class TrainingBench
{
    // The library's default (off until a GPU check), restored after the rows that switch it, so later rows run what a user runs.
    static readonly bool DefaultFusedOptimizer = FusedOptimizer.Enabled;

    public static int Run(string[] argv)
    {
        var a = new BenchArgs(argv);
        var quick = a.Flag("quick");
        var device = a.Device();
        var cuda = device.type == DeviceType.CUDA;
        var preset = a.Get("preset", quick ? "tiny" : "B");
        var batch = a.Int("batch", quick ? 4 : 64);
        var grid = a.Int("grid", quick ? 4 : 16);
        var k = a.Int("k", quick ? 64 : 16_384);
        var classes = a.Int("classes", quick ? 10 : 1000);
        var kinds = a.List("kinds", "ar");
        var precisions = a.List("precisions", cuda ? "bf16,tf32" : "fp32");
        var optimizers = a.List("optimizers", "flat,torchsharp");
        var blockModes = a.List("fused-blocks", cuda ? "on,off" : "off");
        var optimizerModes = a.List("fused-optimizer", cuda ? "on,off" : "off");
        var losses = a.List("losses", "ce").Select(EnumNames<LossKind>.Parse).ToList();
        var implementations = a.List("loss-implementations", "reference");
        foreach (var l in losses) if (l is not (LossKind.CrossEntropy or LossKind.Snce)) throw new ArgumentException($"--losses takes ce,snce; got '{l.Name()}'");
        var lossImpls = implementations.Select(LossNames.ParseImplementation).ToList();
        var leakSteps = a.Int("leak-steps", 0);
        var checkBlocks = a.Get("check-blocks", cuda ? "true" : "false") == "true";
        var checkOptimizer = a.Get("check-optimizer", cuda ? "true" : "false") == "true";
        var steps = a.Int("steps", quick ? 12 : 21);
        var warmup = a.Int("warmup", quick ? 2 : 5);
        var peak = double.Parse(a.Get("peak-tflops", "989"), System.Globalization.CultureInfo.InvariantCulture);
        var sampling = a.Get("sampling", "true") == "true";
        var sampleN = a.Int("sample-n", quick ? 4 : 64);
        var cfg = double.Parse(a.Get("cfg", "2.0"), System.Globalization.CultureInfo.InvariantCulture);
        var e2e = a.Get("e2e", "true") == "true";
        var outDir = a.Get("out", "docs/benchmarks");
        a.RejectUnknown();

        var report = new BenchReport("training", "snce-bench training " + string.Join(' ', argv));
        var sys = SystemReport.Collect(device);
        report.Machine = cuda && sys.Gpus.Count > 0 ? sys.Gpus[0].Name : $"CPU, {sys.CpuThreads} threads";
        if (File.Exists("/proc/loadavg")) report.Notes.Add($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on the machine slows CPU timings)");
        var transformer = GeneratorPresets.Get(preset);
        report.Notes.Add($"preset {preset} (d {transformer.Dim}, {transformer.Layers} layers), batch {batch}, {grid}x{grid} = {grid * grid} tokens, K = {k}, {classes} classes, CE loss from LossFactory");
        report.Notes.Add($"model FLOPs = tokens·(6·N_matmul + 12·L·d·S) (PaLM, S = attended slots); MFU against {peak} TFLOP/s");
        report.Notes.Add("sampling: fastest of 3 runs after a 2-image warmup; random weights (speed does not depend on them)");
        report.Notes.Add($"ms = fastest of 3 blocks of ⌈{steps}/3⌉ steps after {warmup} warmup steps");
        report.Notes.Add("snce: the full trainer step (flat-buffer AdamW + clip + EMA + metrics); torchsharp: zero_grad, forward, loss, backward, TorchSharp's per-parameter AdamW");
        report.Notes.Add("optimizer fused = clip + AdamW + bf16 weight copy + EMA as two NVRTC kernels over the flat buffers (Training/Fused/AdamWKernels.cu); libtorch = FlatAdamW's ~10 ops + clip + Ema (--fused-optimizer on,off). 'optimizer step' rows time that step alone over the model's flat buffers (ms = fastest of 3 blocks); the check row compares 5 steps both ways from the same weights and gradients (clipping active)");
        report.Notes.Add("loss snce: code-anchored, τ = 1 (speed does not depend on τ); implementation fused = the fused loss with the output projection folded in (the objective hands it hidden states and the head's weight, masked rows only for mask; row blocks, online log-sum-exps; the NVRTC kernel on CUDA): the [N, K] logits are never materialized in the step; --losses/--loss-implementations apply to the snce step only");
        if (cuda) report.Notes.Add("device_mem_gib: device memory in use after the row's steps (the caching allocator keeps the peak, and never gives back within one process): compare implementations from separate invocations");
        using var tmp = new TempFolder();

        foreach (var kind in kinds.Select(GeneratorKinds.Parse))
        {
            var config = new GeneratorConfig(kind, preset, transformer, k, grid, grid, classes);
            report.Notes.Add($"{kind.Name()}: {config.ParameterCount:N0} parameters");
            using var shards = Synthetic(config, batch * 4);
            if (checkBlocks)
                foreach (var precision in precisions.Select(EnumNames<Precision>.Parse))
                    report.Add(BlocksCheck(config, precision, shards, Math.Min(batch, 16), device));
            if (checkOptimizer)
                foreach (var precision in precisions.Select(EnumNames<Precision>.Parse))
                    foreach (var row in OptimizerCheck(config, precision, device, warmup, steps)) report.Add(row);
            foreach (var precision in precisions.Select(EnumNames<Precision>.Parse))
                foreach (var blocks in blockModes)
                foreach (var fusedOptimizer in optimizerModes)
                foreach (var optimizer in optimizers)
                foreach (var lossKind in optimizer == "flat" ? losses : [LossKind.CrossEntropy])
                foreach (var impl in optimizer == "flat" ? lossImpls : [LossImplementation.Reference])
                {
                    FusedBlocks.Enabled = blocks switch { "on" => true, "off" => false, _ => throw new ArgumentException($"--fused-blocks takes on,off; got '{blocks}'") };
                    FusedOptimizer.Enabled = fusedOptimizer switch { "on" => true, "off" => false, _ => throw new ArgumentException($"--fused-optimizer takes on,off; got '{fusedOptimizer}'") };
                    if (blocks == "on" && optimizer != "flat") continue;
                    if (optimizer != "flat" && fusedOptimizer != optimizerModes[0]) continue;      // TorchSharp's own AdamW: one row
                    var spec = lossKind == LossKind.Snce
                        ? new LossSpec { Kind = LossKind.Snce, Anchor = NeighborAnchor.Code, Tau = 1.0, Implementation = impl }
                        : new LossSpec { Implementation = impl };
                    var ms = optimizer switch
                    {
                        "flat" => TimeTrainer(config, precision, shards, batch, device, warmup, steps, tmp.Path, spec),
                        "torchsharp" => TimePlainStep(config, precision, shards, batch, device, warmup, steps),
                        _ => throw new ArgumentException($"unknown optimizer '{optimizer}'; use flat, torchsharp"),
                    };
                    var flops = ModelFlops(config, batch);
                    var tflops = flops / (ms / 1e3) / 1e12;
                    report.Add(new()
                    {
                        ["what"] = "train step", ["kind"] = kind.Name(), ["precision"] = precision.Name(), ["step"] = optimizer == "flat" ? "snce" : "torchsharp",
                        ["blocks"] = blocks == "on" ? "fused" : "libtorch",
                        ["optimizer"] = optimizer != "flat" ? "torchsharp" : fusedOptimizer == "on" && cuda ? "fused" : "libtorch", ["loss"] = lossKind.Name(), ["loss_impl"] = impl.Name(),
                        ["device_mem_gib"] = cuda ? Snce.Native.Cuda.CudaDriver.MemoryInUse(device) / (double)(1L << 30) : null,
                        ["ms"] = ms, ["tokens_per_s"] = batch * config.SequenceLength / (ms / 1e3), ["model_tflops"] = tflops, ["mfu"] = tflops / peak,
                    });
                }
        }

        FusedBlocks.Enabled = true;
        FusedOptimizer.Enabled = DefaultFusedOptimizer;
        if (leakSteps > 0 && cuda)
            foreach (var kind in kinds.Select(GeneratorKinds.Parse))
            {
                var config = new GeneratorConfig(kind, preset, transformer, k, grid, grid, classes);
                using var shards = Synthetic(config, batch * 4);
                report.Add(LeakCheck(config, shards, batch, device, leakSteps, tmp.Path));
            }
        if (sampling)
        {
            var samplePrecision = cuda ? ScalarType.BFloat16 : ScalarType.Float32;
            foreach (var (kind, label, options) in new (GeneratorKind, string, GeneratorSamplingOptions)[]
            {
                (GeneratorKind.Autoregressive, "ar, kv cache", new(new(), cfg, KvCache: true, BatchSize: sampleN)),
                (GeneratorKind.Autoregressive, "ar, no cache", new(new(), cfg, KvCache: false, BatchSize: sampleN)),
                (GeneratorKind.Masked, "mask, 8 steps", new(new(), cfg, Steps: 8, BatchSize: sampleN)),
                (GeneratorKind.Masked, "mask, 16 steps", new(new(), cfg, Steps: 16, BatchSize: sampleN)),
            })
            {
                var config = new GeneratorConfig(kind, preset, transformer, k, grid, grid, classes);
                random.manual_seed(0);
                using var model = new TokenGenerator(config).to(device);
                if (samplePrecision == ScalarType.BFloat16) model.bfloat16();
                using var labels = arange(sampleN, dtype: ScalarType.Int64) % classes;
                var warm = options with { Steps = 2 };
                using (var g0 = new Generator(1)) Sample(model, labels.narrow(0, 0, Math.Min(2, sampleN)), warm, g0, device);
                var seconds = Enumerable.Range(0, 3).Min(_ =>                               // fastest of 3 runs
                {
                    using var g = new Generator(2);
                    return Sample(model, labels, options, g, device);
                });
                report.Add(new()
                {
                    ["what"] = "sampling", ["kind"] = label, ["precision"] = samplePrecision == ScalarType.BFloat16 ? "bf16" : "fp32",
                    ["images"] = sampleN, ["cfg"] = cfg, ["seconds"] = seconds, ["images_per_s"] = sampleN / seconds,
                });
            }
        }
        if (e2e)
            foreach (var kind in new[] { GeneratorKind.Autoregressive, GeneratorKind.Masked })
                report.Add(EndToEnd(kind, device, tmp.Path));
        report.Save(outDir);
        Console.WriteLine(report.Markdown());
        return 0;
    }

    /// <summary>
    /// The product path on this device, small: synthetic shards on disk → RunSetup (SNCE, τ calibrated) → 12 steps
    /// with a checkpoint at 6 → a fresh trainer resumed from it to 12 → weights equal to the uninterrupted run's? →
    /// the checkpoint loaded for sampling → 4 images with CFG. Reports ok or the error.
    /// </summary>
    static Dictionary<string, object?> EndToEnd(GeneratorKind kind, Device device, string dir)
    {
        var sw = Stopwatch.StartNew();
        var row = new Dictionary<string, object?> { ["what"] = "end to end", ["kind"] = kind.Name() };
        try
        {
            var config = new GeneratorConfig(kind, "tiny", GeneratorPresets.Tiny, 64, 4, 4, 10);
            var root = Path.Combine(dir, "e2e-" + kind.Name());
            using (var shards = Synthetic(config, 64)) shards.Save(Path.Combine(root, "tokens"));
            var training = new TrainingConfig { Steps = 12, Batch = 8, Lr = 1e-3, WarmupSteps = 2, CheckpointEvery = 6, LogEvery = 3, ValidateEvery = 6, ValidationBatches = 1, Seed = 1 };
            var loss = new LossSpec { Kind = LossKind.Snce, Perplexity = 4, Anchor = NeighborAnchor.Code };
            Tensor Train(string run, long? stopAt, bool resume)
            {
                using var prepared = resume ? RunSetup.Resume(run, device)
                    : RunSetup.New(new NewRun(kind, Path.Combine(root, "tokens"), "tiny", loss, training, run), device);
                using var trainer = new Trainer(prepared.Setup);
                if (resume) trainer.Restore(run);
                var r = trainer.Run(new RunLimits(stopAt));
                if (r.Reason is not (StopReason.Completed or StopReason.MaxSteps)) throw new InvalidOperationException(r.Message);
                return trainer.Parameters.Master.cpu();
            }
            using var whole = Train(Path.Combine(root, "whole"), null, false);
            Train(Path.Combine(root, "split"), 6, false).Dispose();
            using var resumed = Train(Path.Combine(root, "split"), null, true);
            var maxDiff = (whole - resumed).abs().max().item<float>();
            var (model, manifest) = GeneratorCheckpoint.LoadModel(Path.Combine(root, "split"), device);
            using (model)
            using (var g = new Generator(5))
            using (var labels = tensor(new long[] { 0, 1, 2, 3 }))
            using (var ids = GeneratorSampler.Sample(model, labels, new GeneratorSamplingOptions(new(), 2.0, Steps: 4), g))
            {
                var bad = (ids < 0).logical_or(ids >= config.CodebookSize).any().item<bool>();
                row["status"] = bad ? "FAIL: sampled ids out of range" : maxDiff == 0 ? "ok" : $"resume differs by {maxDiff:G3} (nondeterministic kernels)";
                row["tau"] = manifest.Loss.Tau;
            }
        }
        catch (Exception e)
        {
            row["status"] = $"FAIL: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
        }
        row["seconds"] = sw.Elapsed.TotalSeconds;
        return row;
    }

    static double Sample(TokenGenerator model, Tensor labels, GeneratorSamplingOptions o, Generator g, Device device)
    {
        Sync(device);
        var sw = Stopwatch.StartNew();
        using (var ids = GeneratorSampler.Sample(model, labels, o, g)) Sync(device);
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Training FLOPs of one step: tokens·(6·N_matmul + 12·L·d·S), N_matmul = block matmuls + output head.</summary>
    public static double ModelFlops(GeneratorConfig c, int batch)
    {
        var t = c.Transformer;
        double matmul = t.Layers * (4.0 * t.Dim * t.Dim + 3.0 * t.Dim * t.FfnHidden) + (double)t.Dim * c.CodebookSize;
        var slots = c.Kind == GeneratorKind.Autoregressive ? c.SequenceLength : c.SequenceLength + 1;  // prefix + tokens read
        double tokens = (double)batch * c.SequenceLength;
        return tokens * (6 * matmul + 12.0 * t.Layers * t.Dim * slots);
    }

    static TokenShards Synthetic(GeneratorConfig c, int rows)
    {
        var g = new Generator(3);
        return new TokenShards
        {
            Info = new TokenShardsInfo
            {
                Tokenizer = "synthetic", Data = "synthetic", CodebookSize = c.CodebookSize, CodeDim = 8, Metric = "l2",
                Grid = [c.GridHeight, c.GridWidth], ImageSize = 16 * c.GridHeight, Channels = 3,
                Classes = Enumerable.Range(0, c.NumClasses).Select(i => i.ToString()).ToArray(), Count = rows,
            },
            Tokens = randint(c.CodebookSize, [rows, c.SequenceLength], generator: g).to_type(ScalarType.Int32),
            Labels = randint(Math.Max(1, c.NumClasses), [rows], generator: g),
            Split = zeros(rows, dtype: ScalarType.Byte),
            Codebook = randn([c.CodebookSize, 8], generator: g),
        };
    }

    static double TimeTrainer(GeneratorConfig config, Precision precision, TokenShards shards, int batch, Device device, int warmup, int steps, string dir, LossSpec spec)
    {
        var codebook = shards.Codebook.to(device);
        using var train = new TokenDataset(shards, TokenShards.TrainSplit, device, withLatents: false);
        var training = new TrainingConfig { Steps = 1_000_000, Batch = batch, Precision = precision, WarmupSteps = 10, LogEvery = 1_000_000, ValidateEvery = 0, CheckpointEvery = 1_000_000 };
        var resolved = spec.Kind == LossKind.Snce
            ? new ResolvedLoss { Kind = LossKind.Snce, Implementation = spec.Implementation, Anchor = NeighborAnchor.Code, Tau = spec.Tau }
            : new ResolvedLoss { Kind = LossKind.CrossEntropy, Implementation = spec.Implementation };
        var setup = new TrainerSetup(config, training, resolved, () => LossFactory.Create(spec, codebook, Metric.L2),
            train, null, new GeneratorDataInfo(), Path.Combine(dir, $"{config.Kind.Name()}-{precision.Name()}-{spec.Kind.Name()}-{spec.Implementation.Name()}"), device);
        using var trainer = new Trainer(setup);
        for (var i = 0; i < warmup; i++) trainer.TrainStep();
        var ms = BestBlock(trainer.TrainStep, steps, device);
        codebook.Dispose();
        return ms;
    }

    /// <summary>
    /// One forward + backward of the generator on this device with the fused block kernels and with the libtorch ops,
    /// same weights and batch: relative L2 error of the logits and of the concatenated parameter gradients.
    /// </summary>
    static Dictionary<string, object?> BlocksCheck(GeneratorConfig config, Precision precision, TokenShards shards, int batch, Device device)
    {
        using var scope = NewDisposeScope();
        precision.Apply(device);
        random.manual_seed(0);
        using var model = new TokenGenerator(config).to(device);
        if (precision == Precision.Bf16) model.bfloat16();
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.02);                     // the head starts at zero
        var objective = ObjectiveFactory.Create(config.Kind, new ObjectiveOptions());
        using var codebook = shards.Codebook.to(device);
        var loss = LossFactory.Create(new LossSpec(), codebook, Metric.L2);
        using var data = new TokenDataset(shards, TokenShards.TrainSplit, device, withLatents: false);
        var b = data.Batch(arange(batch, dtype: ScalarType.Int64, device: device));
        (Tensor Logits, Tensor Grads) Run(bool fused)
        {
            FusedBlocks.Enabled = fused;
            model.zero_grad();
            using var g = new Generator(7);
            using var seeded = DeviceRandom.SeededDefault(7, device);                              // the same masks and CFG drops both ways (drawn on the device)
            var o = objective.Compute(model, b, loss, g, train: true);
            o.Loss.Loss.backward();
            return (model.Logits(o.Hidden).detach().to_type(ScalarType.Float64), cat(model.parameters().Select(p => p.grad!.flatten().to_type(ScalarType.Float64)).ToArray()));
        }
        var reference = Run(false);
        var fused = Run(true);
        double Rel(Tensor f, Tensor r) => ((f - r).norm() / (r.norm() + 1e-30)).item<double>();
        return new()
        {
            ["what"] = "fused blocks check", ["kind"] = config.Kind.Name(), ["precision"] = precision.Name(),
            ["status"] = $"logits rel err {Rel(fused.Logits, reference.Logits):E2}, grads rel err {Rel(fused.Grads, reference.Grads):E2}",
        };
    }

    /// <summary>
    /// The optimizer step over this model's flat buffers (clip at 1.0, weight decay by group, EMA 0.999), fused and
    /// libtorch: 5 steps each from the same weights and gradients, relative L2 errors of the master weights, moments,
    /// EMA and norms (the check row); then the step alone timed both ways (one row each).
    /// </summary>
    static List<Dictionary<string, object?>> OptimizerCheck(GeneratorConfig config, Precision precision, Device device, int warmup, int steps)
    {
        using var scope = NewDisposeScope();
        precision.Apply(device);
        random.manual_seed(0);
        using var model = new TokenGenerator(config).to(device);
        if (precision == Precision.Bf16) model.bfloat16();
        using var flat = new FlatParameters(model.ParameterGroups());
        var start = flat.Master.clone();
        var options = new AdamWOptions(MaxGradNorm: 1.0);
        var schedule = new LrSchedule(1e-3, 2, 10);
        void FillGrads(int step)
        {
            using var s = NewDisposeScope();
            // Drawn on the CPU and copied: TorchSharp's generators are CPU-only, and randn(generator: cpu, device: cuda) throws
            // (docs/torchsharp-notes.md). Outside the timed block, so the copy costs the check nothing it measures.
            using var g = new Generator(20 + (ulong)step);
            using (no_grad()) flat.Grads.copy_((randn(flat.Size, generator: g) * 0.05).to(device).to_type(flat.Grads.dtype));   // norm ≫ 1: clipping active
        }
        (Tensor[] State, double Ms, bool Fused) Run(bool fused)
        {
            FusedOptimizer.Enabled = fused;
            using (no_grad()) { flat.Master.copy_(start); flat.SyncValuesFromMaster(); }
            using var adam = new FlatAdamW(flat, options);
            using var ema = new Ema(flat.Master, 0.999);
            var norms = new List<Tensor>();
            for (var i = 0; i < 5; i++)
            {
                FillGrads(i);
                norms.Add(adam.Step(schedule.At(i), ema).reshape(1));
            }
            Tensor[] state = [flat.Master.clone(), adam.ExpAvg.clone(), adam.ExpAvgSq.clone(), ema.Values.clone(), cat(norms)];
            // Timed with a clip limit the norm never reaches: the same kernels, but the libtorch path's in-place clip of fp32
            // gradients then leaves them as they are (clipped again every step they would shrink into denormals).
            using var timed = new FlatAdamW(flat, options with { MaxGradNorm = 1e12 });
            for (var i = 0; i < warmup; i++) { using var s = NewDisposeScope(); timed.Step(1e-3, ema); }
            var ms = BestBlock(() => { using var s = NewDisposeScope(); timed.Step(1e-3, ema); }, steps, device);
            return (state, ms, Snce.Training.Fused.AdamWKernels.For(flat) is not null);
        }
        var reference = Run(false);
        var fusedRun = Run(true);
        FusedOptimizer.Enabled = DefaultFusedOptimizer;
        double Rel(Tensor f, Tensor r) => ((f.to_type(ScalarType.Float64) - r.to_type(ScalarType.Float64)).norm() / (r.to_type(ScalarType.Float64).norm() + 1e-30)).item<double>();
        var names = new[] { "master", "m", "v", "ema", "norm" };
        var errors = string.Join(", ", names.Select((n, i) => $"{n} {Rel(fusedRun.State[i], reference.State[i]):E2}"));
        var rows = new List<Dictionary<string, object?>>
        {
            new()
            {
                ["what"] = "fused optimizer check", ["kind"] = config.Kind.Name(), ["precision"] = precision.Name(),
                ["status"] = fusedRun.Fused ? $"rel err after 5 steps: {errors}" : "NOT RUN: the fused kernels are not available on this device (the libtorch path ran twice)",
            },
        };
        foreach (var (run, label) in new[] { (reference, "libtorch"), (fusedRun, fusedRun.Fused ? "fused" : "libtorch (fused unavailable)") })
            rows.Add(new()
            {
                ["what"] = "optimizer step", ["kind"] = config.Kind.Name(), ["precision"] = precision.Name(), ["optimizer"] = label,
                ["parameters"] = flat.Size, ["ms"] = run.Ms,
            });
        return rows;
    }

    /// <summary>Device memory in use (cuMemGetInfo) after a warm-up and after <paramref name="steps"/> more fused steps: flat means no leak.</summary>
    static Dictionary<string, object?> LeakCheck(GeneratorConfig config, TokenShards shards, int batch, Device device, int steps, string dir)
    {
        var codebook = shards.Codebook.to(device);
        using var train = new TokenDataset(shards, TokenShards.TrainSplit, device, withLatents: false);
        var training = new TrainingConfig { Steps = 1_000_000, Batch = batch, Precision = Precision.Bf16, WarmupSteps = 10, LogEvery = 1_000_000, ValidateEvery = 0, CheckpointEvery = 1_000_000 };
        var setup = new TrainerSetup(config, training, new ResolvedLoss { Kind = LossKind.CrossEntropy }, () => LossFactory.Create(new LossSpec(), codebook, Metric.L2),
            train, null, new GeneratorDataInfo(), Path.Combine(dir, $"leak-{config.Kind.Name()}"), device);
        using var trainer = new Trainer(setup);
        long Used() { Sync(device); GC.Collect(); GC.WaitForPendingFinalizers(); var (free, total) = Snce.Native.Cuda.CudaDriver.MemoryInfo(); return (total - free) >> 20; }
        for (var i = 0; i < 20; i++) trainer.TrainStep();
        var before = Used();
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++) trainer.TrainStep();
        var after = Used();
        codebook.Dispose();
        return new()
        {
            ["what"] = "leak check", ["kind"] = config.Kind.Name(), ["precision"] = "bf16", ["blocks"] = "fused", ["seconds"] = sw.Elapsed.TotalSeconds,
            ["status"] = $"device MiB in use after 20 steps {before}, after {steps} more {after} (Δ {after - before})",
        };
    }

    static double TimePlainStep(GeneratorConfig config, Precision precision, TokenShards shards, int batch, Device device, int warmup, int steps)
    {
        precision.Apply(device);
        random.manual_seed(0);
        using var model = new TokenGenerator(config).to(device);
        if (precision == Precision.Bf16) model.bfloat16();
        var groups = model.ParameterGroups();
        using var opt = optim.AdamW([
            new AdamW.ParamGroup(groups.Where(g => g.Decay).Select(g => g.Parameter), new AdamW.Options { weight_decay = 0.05 }),
            new AdamW.ParamGroup(groups.Where(g => !g.Decay).Select(g => g.Parameter), new AdamW.Options { weight_decay = 0 }),
        ], lr: 1e-4, beta1: 0.9, beta2: 0.95);
        using var codebook = shards.Codebook.to(device);
        var loss = LossFactory.Create(new LossSpec(), codebook, Metric.L2);
        var objective = ObjectiveFactory.Create(config.Kind, new ObjectiveOptions());
        using var data = new TokenDataset(shards, TokenShards.TrainSplit, device, withLatents: false);
        using var idx = arange(batch, dtype: ScalarType.Int64, device: device);
        var b = data.Batch(idx);
        using var gen = new Generator(1);
        void Step()
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            objective.Compute(model, b, loss, gen, train: true).Loss.Loss.backward();
            opt.step();
        }
        for (var i = 0; i < warmup; i++) Step();
        return BestBlock(Step, steps, device);
    }

    /// <summary>
    /// ms per step: the fastest of 3 blocks of ⌈steps/3⌉ steps, each timed between device syncs (the minimum is
    /// robust to other work on a shared machine; on a dedicated GPU the blocks agree).
    /// </summary>
    static double BestBlock(Action step, int steps, Device device)
    {
        var per = Math.Max(1, (steps + 2) / 3);
        var best = double.MaxValue;
        for (var block = 0; block < 3; block++)
        {
            Sync(device);
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < per; i++) step();
            Sync(device);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds / per);
        }
        return best;
    }

    static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("snce-bench-").FullName;
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
