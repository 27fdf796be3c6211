using System.Diagnostics;
using Snce.IO;
using TorchSharp;
using Snce.Losses;
using Snce.Models;
using Snce.Objectives;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// The training loop: for each step, gather a batch, run the objective and the loss, backward, synchronize
/// gradients, clip + AdamW (flat buffers), EMA; log, validate and checkpoint on their cadence. One dispose scope
/// per step; the device is read back only at log, validation and checkpoint steps.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly TrainerSetup setup;
    readonly TrainingConfig cfg;
    readonly IGradientSync sync;
    readonly ITrainingObjective objective;
    readonly ITokenLoss loss;
    readonly FlatParameters flat;
    readonly FlatAdamW optimizer;
    readonly Ema ema;
    readonly Generator generator;
    readonly BatchOrder order;
    readonly Tensor lossSum, hardCeSum, gradNormSum, firstBadStep;
    readonly RunFolder run;
    readonly MetricsLog? log;
    long sinceLog;
    double elapsedBefore;
    long? lastCheckpoint;

    /// <summary>Builds the network (seeded), its flat parameters, optimizer, EMA, data order and loss.</summary>
    public Trainer(TrainerSetup setup)
    {
        this.setup = setup;
        cfg = setup.Training;
        cfg.Validate();
        setup.Model.Validate();
        sync = setup.Sync ?? SingleProcess.Instance;
        cfg.Precision.Apply(setup.Device);
        // Initialized on the CPU from the run's seed (the same weights on every device); the caller's CPU stream is given back.
        var model = DeviceRandom.WithSeededDefault(cfg.Seed, CPU, () => new TokenGenerator(setup.Model));
        if (setup.Model.EmbeddingInit == EmbeddingInit.Codebook)        // a resumed run overwrites these weights from its checkpoint
            model.InitTokenEmbeddingsFromCodebook(setup.Codebook ?? throw new ArgumentException("embedding init 'codebook' needs the tokenizer's codebook (TrainerSetup.Codebook)"), cfg.Seed);
        Model = model.to(setup.Device);
        if (cfg.Precision == Precision.Bf16) Model.bfloat16();
        flat = new FlatParameters(Model.ParameterGroups());
        using (no_grad())
        {
            sync.BroadcastFromRank0(flat.Master);                      // every rank starts from rank 0's weights
            flat.SyncValuesFromMaster();
        }
        optimizer = new FlatAdamW(flat, cfg.AdamW);
        ema = new Ema(flat.Master, cfg.EmaDecay);
        LocalBatch = LocalBatchOf(cfg.Batch, sync.WorldSize);
        // CPU: the masked objective's mask ratios, which the host must know (MaskedObjective.CorruptCounted). Rank 0 draws
        // what a 1-process run draws; the other ranks draw their own (their examples must not repeat rank 0's pattern).
        generator = new Generator((ulong)RankSeed(cfg.Seed, sync.Rank) + 1);
        order = new BatchOrder(setup.Train.Count, LocalBatch, cfg.Seed, setup.Device, sync.Rank, sync.WorldSize);
        objective = ObjectiveFactory.Create(setup.Model.Kind, cfg.Objective);
        loss = setup.CreateLoss();
        lossSum = zeros(1, device: setup.Device);
        hardCeSum = zeros(1, device: setup.Device);
        gradNormSum = zeros(1, device: setup.Device);
        firstBadStep = full(1, -1L, dtype: ScalarType.Int64, device: setup.Device);
        run = new RunFolder(setup.RunDir);
        if (sync.Rank == 0) log = new MetricsLog(run);
    }

    /// <summary>Sequences this process reads per step: the global <see cref="TrainingConfig.Batch"/> ÷ the world size.</summary>
    public int LocalBatch { get; }

    /// <summary>
    /// Each process's share of a global batch of <paramref name="globalBatch"/> sequences over <paramref name="world"/> processes;
    /// throws naming both numbers and the nearest batches that divide when it does not divide evenly.
    /// </summary>
    public static int LocalBatchOf(int globalBatch, int world)
    {
        if (world <= 0) throw new ArgumentOutOfRangeException(nameof(world), $"world size must be positive (got {world})");
        if (globalBatch % world == 0) return globalBatch / world;
        var below = globalBatch / world * world;
        throw new ArgumentException($"--batch {globalBatch} (the global batch) does not divide among {world} processes; " +
            $"give a multiple of {world}, e.g. --batch {(below > 0 ? $"{below} or " : "")}{below + world}");
    }

    /// <summary>The seed rank <paramref name="rank"/>'s own random streams derive from: the run's seed on rank 0.</summary>
    static long RankSeed(long seed, int rank) => rank == 0 ? seed : DeviceRandom.StepSeed(seed ^ 0x5EED_0000_0000L, rank);

    /// <summary>The network being trained (its parameters live in the flat buffers).</summary>
    public TokenGenerator Model { get; }

    /// <summary>Optimizer steps done.</summary>
    public long Step { get; private set; }

    /// <summary>The flat parameters (master weights, gradients).</summary>
    public FlatParameters Parameters => flat;

    /// <summary>The EMA weights (flat, laid out like <see cref="Parameters"/>).</summary>
    public Tensor EmaValues => ema.Values;

    /// <summary>The run's checkpoint folder.</summary>
    public string CheckpointDir => run.Checkpoint;

    /// <summary>
    /// One training step (no host sync). Returns nothing; metrics accumulate on the device. Every draw is the run's:
    /// the batch order from (seed, epoch) (<see cref="BatchOrder"/>); the masked objective's mask ratios, which the
    /// host must know, from its CPU <see cref="Generator"/> (restored on resume); everything else (masked positions,
    /// CFG dropout, caption picks, the stochastic loss's picks, backbone dropout) on the device from the device's
    /// default generator seeded from (seed, step) for this step only (<see cref="DeviceRandom.SeededDefault"/>), so a
    /// resumed run, or one interleaved with another, draws what an uninterrupted run alone does.
    /// </summary>
    public void TrainStep()
    {
        using var scope = NewDisposeScope();
        using var seeded = DeviceRandom.SeededDefault(DeviceRandom.StepSeed(RankSeed(cfg.Seed, sync.Rank), Step), setup.Device);
        var lr = cfg.Schedule.At(Step);
        flat.ZeroGrad();
        var batch = setup.Train.Batch(order.Next(), drawCaptions: true);
        var output = objective.Compute(Model, batch, loss, generator, train: true);
        output.Loss.Loss.backward();
        sync.AfterBackward(flat.Grads);
        var gradNorm = optimizer.Step(lr, ema);                                           // clip, AdamW and EMA (fused on CUDA)
        using (no_grad())
        {
            var l = output.Loss.Loss.detach().to_type(ScalarType.Float32);
            lossSum.add_(l);
            hardCeSum.add_(output.Loss.HardCe.to_type(ScalarType.Float32));
            gradNormSum.add_(gradNorm);
            var newlyBad = l.isfinite().logical_not().logical_and(firstBadStep < 0).to_type(ScalarType.Int64);
            firstBadStep.add_(newlyBad * (Step + 1));                                     // −1 + (step+1) = step
        }
        Step++;
        sinceLog++;
    }

    /// <summary>
    /// Runs until the configured steps, the invocation's limits, cancellation or a non-finite loss; saves a
    /// checkpoint every <see cref="TrainingConfig.CheckpointEvery"/> steps and on exit (never after a NaN).
    /// </summary>
    public TrainResult Run(RunLimits limits, Action<TrainProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var logClock = Stopwatch.StartNew();
        var maxSteps = Math.Min(limits.MaxSteps ?? cfg.Steps, cfg.Steps);
        StopReason reason;
        while (true)
        {
            if (Step >= cfg.Steps) { reason = StopReason.Completed; break; }
            if (Step >= maxSteps) { reason = StopReason.MaxSteps; break; }
            if (AgreedStop(cancel.IsCancellationRequested, limits.TimeLimit is { } tl && clock.Elapsed >= tl) is { } stop) { reason = stop; break; }
            try
            {
                TrainStep();
            }
            catch (Exception e) when (e is ArgumentException or System.Runtime.InteropServices.ExternalException && !WeightsFinite())
            {
                // A loss that validates its input refuses NaN logits: the weights went bad in an earlier update.
                return Diverged(BadStep() ?? Step, $" (the loss refused the step: {e.Message.Split('\n')[0]})");
            }
            double? meanLoss = null;
            ValidationMetrics? val = null;
            var last = Step == cfg.Steps;
            if (Step % cfg.LogEvery == 0 || last)
            {
                if (BadStep() is { } bad) return Diverged(bad);
                meanLoss = LogTrain(logClock.Elapsed.TotalSeconds);
                logClock.Restart();
            }
            if (sync.Rank == 0 && setup.Validation is not null && ((cfg.ValidateEvery > 0 && Step % cfg.ValidateEvery == 0) || last))   // rank 0 alone: no collective
            {
                val = Validate();
                LogValidation(val);
            }
            if (Step % cfg.CheckpointEvery == 0 && !last)
            {
                if (BadStep() is { } bad) return Diverged(bad);
                Save(clock.Elapsed.TotalSeconds);
            }
            progress?.Invoke(new TrainProgress(Step, cfg.Steps, cfg.Schedule.At(Step - 1), meanLoss, val));
        }
        if (BadStep() is { } b) return Diverged(b);
        if (sinceLog > 0) LogTrain(logClock.Elapsed.TotalSeconds);
        if (lastCheckpoint != Step) Save(clock.Elapsed.TotalSeconds);
        var message = reason switch
        {
            StopReason.Completed => $"finished {Step} steps",
            StopReason.MaxSteps => $"stopped at step {Step} (--max-steps); continue with --resume",
            StopReason.TimeLimit => $"stopped at step {Step} (time limit); continue with --resume",
            StopReason.Cancelled => $"interrupted at step {Step}; checkpoint saved, continue with --resume",
            _ => throw new InvalidOperationException(),
        };
        return new TrainResult(reason, Step, message, lastCheckpoint);
    }

    /// <summary>
    /// Whether this invocation stops before the next step (cancelled, or out of time). Several processes must stop at the
    /// same step (they meet in every collective), so they decide together, at log steps only (where the host reads the
    /// device anyway): a stop requested on any rank stops all of them at the next multiple of <see cref="TrainingConfig.LogEvery"/>.
    /// </summary>
    StopReason? AgreedStop(bool cancelled, bool outOfTime)
    {
        if (sync.WorldSize > 1)
        {
            if (Step % cfg.LogEvery != 0) return null;
            using var scope = NewDisposeScope();
            var flags = tensor(new[] { cancelled ? 1f : 0f, outOfTime ? 1f : 0f }).to(setup.Device);
            sync.AverageMetric(flags);                                                     // > 0: some rank asks
            var any = flags.cpu().data<float>().ToArray();
            sync.ThrowIfFailed();
            (cancelled, outOfTime) = (any[0] > 0, any[1] > 0);
        }
        return cancelled ? StopReason.Cancelled : outOfTime ? StopReason.TimeLimit : null;
    }

    /// <summary>The first step whose loss was not finite, on any rank (several processes agree, so they stop together).</summary>
    long? BadStep()
    {
        var s = firstBadStep.item<long>();
        if (sync.WorldSize > 1)
        {
            using var scope = NewDisposeScope();
            var bad = tensor(s >= 0 ? 1f : 0f).to(setup.Device);
            sync.AverageMetric(bad);
            var anyBad = bad.item<float>() > 0;
            sync.ThrowIfFailed();
            if (anyBad && s < 0) s = Math.Max(0, Step - 1);                               // another rank's: at most this step
        }
        return s >= 0 ? s : null;
    }

    bool WeightsFinite()
    {
        using var scope = NewDisposeScope();
        return flat.Master.isfinite().all().item<bool>();
    }

    TrainResult Diverged(long badStep, string detail = "")
    {
        var kept = lastCheckpoint is { } c ? $"the last good checkpoint (step {c}) is kept in {CheckpointDir}" : "no checkpoint was written before it";
        var message =
            $"the training loss became NaN/Inf at step {badStep + 1}{detail}; stopped without saving ({kept}). " +
            "Likely causes: learning rate too high (lower --lr or lengthen --warmup), SNCE temperature too small " +
            "(raise --tau or --perplexity), or bad data (token ids or latents out of range: re-run 'snce tokenize').";
        return new TrainResult(StopReason.NonFinite, Step, message, lastCheckpoint);
    }

    double LogTrain(double seconds)
    {
        sync.AverageMetric(lossSum);
        sync.AverageMetric(hardCeSum);
        var n = Math.Max(1, sinceLog);
        var meanLoss = lossSum.item<float>() / n;
        sync.ThrowIfFailed();                                                             // an aborted collective leaves garbage: do not log it
        var values = new Dictionary<string, double>
        {
            ["loss"] = meanLoss,
            ["hard_ce"] = hardCeSum.item<float>() / n,
            ["grad_norm"] = gradNormSum.item<float>() / n,
            ["lr"] = cfg.Schedule.At(Step - 1),
            ["steps_per_s"] = sinceLog / Math.Max(1e-9, seconds),
            ["epoch"] = order.Epoch + (double)order.Position / order.BatchesPerEpoch,
        };
        log?.Write(Step, "train", values);
        lossSum.zero_(); hardCeSum.zero_(); gradNormSum.zero_();
        sinceLog = 0;
        return meanLoss;
    }

    void LogValidation(ValidationMetrics v)
    {
        var values = new Dictionary<string, double>
        {
            ["loss"] = v.Loss, ["hard_ce"] = v.HardCe, ["accuracy"] = v.Accuracy, ["top5"] = v.Top5, ["positions"] = v.Positions,
        };
        if (v.TargetEntropy is { } h) { values["target_entropy"] = h; values["kl"] = v.Loss - h; }
        log?.Write(Step, "val", values);
    }

    /// <summary>
    /// Held-out metrics of the current weights on the first <see cref="TrainingConfig.ValidationBatches"/>
    /// batches of the validation split (fixed order; the masked corruption uses fixed seeds, for its CPU generator
    /// and for the device's default one, so numbers are comparable across steps).
    /// </summary>
    public ValidationMetrics Validate()
    {
        var data = setup.Validation ?? throw new InvalidOperationException("no validation split");
        Model.eval();                                                                           // no dropout in held-out metrics
        try { return ValidateCore(data); }
        finally { Model.train(); }
    }

    ValidationMetrics ValidateCore(TokenDataset data)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var g = new Generator((ulong)cfg.Seed + 2);
        using var seeded = DeviceRandom.SeededDefault(cfg.Seed + 2, setup.Device);                // the masked positions (drawn on the device)
        var sums = zeros(6, dtype: ScalarType.Float64, device: setup.Device);                   // loss·n, ce·n, top1, top5, H·n, n
        var batches = Math.Min((data.Count + cfg.Batch - 1) / cfg.Batch, cfg.ValidationBatches);   // global batches, on rank 0 alone
        var hasEntropy = false;
        for (long i = 0; i < batches; i++)
        {
            using var step = NewDisposeScope();
            var start = i * cfg.Batch;
            var idx = arange(start, Math.Min(start + cfg.Batch, data.Count), dtype: ScalarType.Int64, device: setup.Device);
            var o = objective.Compute(Model, data.Batch(idx), loss, g, train: false);
            var supervised = (o.Mask ?? ones_like(o.Targets, dtype: ScalarType.Bool)).to_type(ScalarType.Float64);
            var n = supervised.sum();
            var logits = Model.Logits(o.Hidden);                                                 // [N, K]: validation only; training never forms them with a fused loss
            var top5 = logits.topk(Math.Min(5, (int)logits.shape[1]), dim: 1).indexes;
            var hit5 = (top5 == o.Targets.unsqueeze(1)).any(1).to_type(ScalarType.Float64);
            var hit1 = (top5.select(1, 0) == o.Targets).to_type(ScalarType.Float64);
            hasEntropy = o.Loss.TargetEntropy is not null;
            sums.add_(stack([
                o.Loss.Loss.detach().to_type(ScalarType.Float64) * n,
                o.Loss.HardCe.to_type(ScalarType.Float64) * n,
                (hit1 * supervised).sum(),
                (hit5 * supervised).sum(),
                (o.Loss.TargetEntropy?.to_type(ScalarType.Float64) ?? zeros(1, dtype: ScalarType.Float64, device: setup.Device).squeeze()) * n,
                n,
            ]));
        }
        var s = sums.cpu().data<double>().ToArray();
        var count = Math.Max(1, s[5]);
        return new ValidationMetrics(s[0] / count, s[1] / count, s[2] / count, s[3] / count, hasEntropy ? s[4] / count : null, (long)s[5]);
    }

    /// <summary>Writes the checkpoint folder atomically through <see cref="GeneratorCheckpoint.Save"/> (rank 0 only).</summary>
    public void Save(double invocationSeconds = 0)
    {
        if (sync.Rank != 0) { lastCheckpoint = Step; return; }
        var manifest = new CheckpointManifest
        {
            Model = setup.Model,
            Training = cfg,
            Loss = setup.Loss,
            Data = setup.Data,
            State = new TrainerState { Step = Step, Epoch = order.Epoch, Position = order.Position, ElapsedSeconds = elapsedBefore + invocationSeconds },
        };
        using var scope = NewDisposeScope();                                              // the views and the generator state
        GeneratorCheckpoint.Save(run, manifest, new CheckpointTensors(
            flat.Views(flat.Master), flat.Views(ema.Values), flat.Views(optimizer.ExpAvg), flat.Views(optimizer.ExpAvgSq),
            optimizer.Steps, generator.get_state()));
        lastCheckpoint = Step;
    }

    /// <summary>
    /// Continues from a checkpoint: weights, EMA, Adam moments and step, the random generator and the data
    /// position. The checkpoint's model must match this trainer's.
    /// </summary>
    public void Restore(string path)
    {
        var dir = GeneratorCheckpoint.Resolve(path);
        var m = GeneratorCheckpoint.ReadManifest(dir);
        if (m.Model != setup.Model)
            throw new InvalidDataException($"{dir}: the checkpoint's model ({m.Model.Kind.Name()}, {m.Model.Preset}, K = {m.Model.CodebookSize}) differs from the one being trained ({setup.Model.Kind.Name()}, {setup.Model.Preset}, K = {setup.Model.CodebookSize})");
        using (var t = GeneratorCheckpoint.LoadTensors(dir))
        {
            flat.Load(flat.Master, t.Model, GeneratorCheckpoint.ModelFile);
            flat.SyncValuesFromMaster();
            flat.Load(ema.Values, t.Ema, GeneratorCheckpoint.EmaFile);
            flat.Load(optimizer.ExpAvg, t.ExpAvg, GeneratorCheckpoint.OptimizerFile);
            flat.Load(optimizer.ExpAvgSq, t.ExpAvgSq, GeneratorCheckpoint.OptimizerFile);
            optimizer.Steps = t.OptimizerSteps;
            if (sync.Rank == 0) generator.set_state(t.GeneratorState);
            else generator.manual_seed(DeviceRandom.StepSeed(RankSeed(cfg.Seed, sync.Rank), m.State.Step));   // only rank 0's stream is saved
        }
        order.Restore(m.State.Epoch, m.State.Position);
        Step = m.State.Step;
        elapsedBefore = m.State.ElapsedSeconds;
        lastCheckpoint = Step;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in new[] { lossSum, hardCeSum, gradNormSum, firstBadStep }) t.Dispose();
        optimizer.Dispose();
        ema.Dispose();
        order.Dispose();
        generator.Dispose();
        if (loss is IDisposable d) d.Dispose();
        Model.Dispose();
        flat.Dispose();
    }
}
