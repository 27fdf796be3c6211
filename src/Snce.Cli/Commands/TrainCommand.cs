using System.CommandLine;
using Snce.Distributed;
using Snce.Losses;
using Snce.Native;
using Snce.Models;
using Snce.Objectives;
using Snce.Training;
using TorchSharp;

namespace Snce.Cli.Commands;

/// <summary><c>snce train ar|mask</c>: trains a generator on token shards with any loss; resumable.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var kind = new Argument<string?>("generator") { Description = $"Which generator: {EnumNames<GeneratorKind>.Allowed} (taken from the checkpoint with --resume).", Arity = ArgumentArity.ZeroOrOne };
        var tokens = new Option<string?>("--tokens") { Description = "Token shard folder from 'snce tokenize' (with --resume: defaults to the checkpoint's; must match its K, grid and classes). Paired shards ('snce tokenize --pairs') train an image-to-image generator conditioned on each pair's source tokens; the loss's targets are the target image's.", HelpName = "DIR" };
        var preset = new Option<string>("--preset") { Description = $"Backbone size: {GeneratorPresets.Allowed}.", DefaultValueFactory = _ => "S", HelpName = "tiny|S|B" };
        var loss = new Option<string>("--loss") { Description = $"Token loss: {EnumNames<LossKind>.Allowed}. Options a loss does not read are an error.", DefaultValueFactory = _ => "ce", HelpName = "NAME" };
        var tau = new Option<double?>("--tau") { Description = "SNCE temperature τ > 0 (or --perplexity).", HelpName = "X" };
        var perplexity = new Option<double?>("--perplexity") { Description = "SNCE: calibrate one global τ so the mean target perplexity 2^H(q) on training anchors is P (once, when the run starts). Label smoothing: set ε to SNCE's mean off-target mass at this P.", HelpName = "P" };
        var topK = new Option<int?>("--top-k") { Description = "SNCE (and label smoothing with --perplexity): truncate targets to the k nearest codes.", HelpName = "k" };
        var epsilon = new Option<double?>("--epsilon") { Description = $"Label smoothing ε (default {LossSpec.DefaultEpsilon}); or give --perplexity P to match ε to SNCE at P (the same mean off-target mass).", HelpName = "E" };
        var alpha = new Option<double?>("--alpha") { Description = $"Stochastic quantization: replacement probability α (default {LossSpec.DefaultAlpha}).", HelpName = "A" };
        var delta = new Option<int?>("--delta") { Description = $"Stochastic quantization: draw from the top-δ nearest codes (default {LossSpec.DefaultDelta}).", HelpName = "D" };
        var anchor = new Option<string>("--anchor") { Description = "snce, stochastic (and label smoothing with --perplexity): neighbor targets around the encoder latent or the ground-truth code: auto (latent when the shards store latents), latent, code.", DefaultValueFactory = _ => "auto", HelpName = "auto|latent|code" };
        var implementation = new Option<string>("--loss-implementation")
        {
            Description = "ce and snce: reference (materializes [N, K] targets) or fused (row blocks with online log-sum-exps and the output projection folded in; the NVRTC kernel on CUDA, libtorch ops on the CPU). Same loss to rounding; fused needs less memory at large K. auto: fused on CUDA for ce and snce (a 2.1x / 3.2x faster training step at K = 65,536 on an H200), reference otherwise.",
            DefaultValueFactory = _ => "auto", HelpName = "auto|reference|fused",
        };
        var steps = new Option<long>("--steps") { Description = "Total optimizer steps (the LR schedule's length).", DefaultValueFactory = _ => 10_000, HelpName = "N" };
        var batch = new Option<int>("--batch") { Description = "Sequences per step over all GPUs (the global batch: with --gpus N or WORLD_SIZE = N each process reads B/N; B must divide by N).", DefaultValueFactory = _ => 64, HelpName = "B" };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 3e-4, HelpName = "LR" };
        var warmup = new Option<long?>("--warmup") { Description = "Linear warmup steps (default: 5% of --steps, at most 2000).", HelpName = "N" };
        var minLr = new Option<double>("--min-lr-ratio") { Description = "Final LR of the cosine decay as a fraction of the peak.", DefaultValueFactory = _ => 0.1, HelpName = "R" };
        var wd = new Option<double>("--weight-decay") { Description = "AdamW weight decay (linear weights only; not norms or embeddings).", DefaultValueFactory = _ => 0.05, HelpName = "W" };
        var beta2 = new Option<double>("--beta2") { Description = "AdamW β₂.", DefaultValueFactory = _ => 0.95, HelpName = "B2" };
        var clip = new Option<double>("--grad-clip") { Description = "Clip the global gradient norm (0 = off).", DefaultValueFactory = _ => 1.0, HelpName = "C" };
        var ema = new Option<double>("--ema") { Description = "EMA decay of the weights (samplers use the EMA).", DefaultValueFactory = _ => 0.999, HelpName = "D" };
        var dropout = new Option<double>("--dropout") { Description = "Backbone dropout in training: attention weights and both residual branches of every block (0 = off; recorded in the checkpoint).", DefaultValueFactory = _ => 0.0, HelpName = "P" };
        var initEmbeddings = new Option<string>("--init-embeddings") { Description = $"How the input token embeddings start: {EnumNames<EmbeddingInit>.Allowed} (codebook: a fixed random projection of the tokenizer's codebook scaled to the init std, so nearby codes start nearby; recorded in the checkpoint).", DefaultValueFactory = _ => "random", HelpName = "NAME" };
        var cfgDrop = new Option<double>("--cfg-dropout") { Description = "Probability of training on the null class (classifier-free guidance).", DefaultValueFactory = _ => 0.1, HelpName = "P" };
        var schedule = new Option<string>("--schedule") { Description = $"Masked generator: masking schedule ({EnumNames<MaskScheduleKind>.Allowed}).", DefaultValueFactory = _ => "cosine", HelpName = "NAME" };
        var weighting = new Option<string>("--weighting") { Description = $"Masked generator: token weighting ({EnumNames<MaskWeighting>.Allowed}; elbo = MDLM's −γ'/γ).", DefaultValueFactory = _ => "none", HelpName = "NAME" };
        var precision = new Option<string>("--precision") { Description = $"{EnumNames<Precision>.Allowed}, or auto (bf16 on CUDA, fp32 on the CPU). bf16 = bf16 weights with fp32 master weights.", DefaultValueFactory = _ => "auto", HelpName = "NAME" };
        var seed = new Option<long>("--seed") { Description = "Seeds initialization, data order and all random draws.", DefaultValueFactory = _ => 0, HelpName = "S" };
        var ckptEvery = new Option<long>("--checkpoint-every") { Description = "Save a checkpoint every N steps (and at exit).", DefaultValueFactory = _ => 1000, HelpName = "N" };
        var valEvery = new Option<long>("--validate-every") { Description = "Validate on the held-out split every N steps (and at the end); 0 = at the end only.", DefaultValueFactory = _ => 500, HelpName = "N" };
        var valBatches = new Option<int>("--val-batches") { Description = "Held-out batches per validation.", DefaultValueFactory = _ => 16, HelpName = "N" };
        var logEvery = new Option<long>("--log-every") { Description = "Read metrics back and log them every N steps.", DefaultValueFactory = _ => 50, HelpName = "N" };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Stop this invocation when the step count reaches N (continue later with --resume).", HelpName = "N" };
        var timeLimit = new Option<string?>("--time-limit") { Description = $"Stop this invocation after this wall time ({Durations.Syntax}), saving a checkpoint.", HelpName = "T" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder exactly where its checkpoint stopped (its own settings apply).", HelpName = "RUN" };
        var output = new Option<string?>("--out") { Description = "Run folder: checkpoint/, metrics.jsonl, tb/ (TensorBoard).", HelpName = "RUN" };
        var text = new Option<bool>("--text") { Description = "Text-to-image: condition on the shards' captions (from 'snce tokenize --text'; one training caption drawn per image and step) instead of class labels; --cfg-dropout is the caption dropout. " +
            "On paired shards made with 'snce tokenize --pairs ... --text': condition on each pair's instruction and its source ([text | source]); --cfg-dropout drops the instruction." };
        var gpus = new Option<int?>("--gpus")
        {
            Description = "Data-parallel training on N GPUs of this host through NCCL: starts N copies of this command (one per GPU, torchrun's variables), " +
                "forwards rank 0's output, writes every rank's to RUN/logs/rank-R.log, and stops all of them when one fails. " +
                "The same run as on one GPU with the same --batch (the global batch), LR schedule and checkpoints; --resume works with any N that divides --batch. " +
                "Across hosts, start the command yourself on every GPU with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set (as torchrun does).",
            HelpName = "N",
        };

        var cmd = new Command("train",
            "Train an autoregressive (ar) or masked (mask) generator on token shards with any loss (on paired shards: an image-to-image generator).\n" +
            "Several GPUs: --gpus N on one host, or torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) per process; " +
            $"{DistributedTraining.ModeVariable}=nccl trains one process through NCCL. Only rank 0 writes the run folder.\n" +
            "Presets (parameters at K = 16,384, 1,000 classes):\n  " + string.Join("\n  ", GeneratorPresets.Describe()));
        cmd.Arguments.Add(kind);
        foreach (var o in new Option[] { tokens, preset, loss, tau, perplexity, topK, epsilon, alpha, delta, anchor, implementation, steps, batch, lr, warmup, minLr, wd, beta2, clip, ema, dropout, initEmbeddings, cfgDrop, schedule, weighting, precision, seed, ckptEvery, valEvery, valBatches, logEvery, maxSteps, timeLimit, resume, output, text, gpus })
            cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var limits = new RunLimits(parse.GetValue(maxSteps), Durations.Parse(parse.GetValue(timeLimit), "--time-limit"));
            var resumeDir = parse.GetValue(resume);
            var kindText = parse.GetValue(kind);
            if (resumeDir is null)
            {
                if (kindText is null) throw new ArgumentException($"name the generator to train ({EnumNames<GeneratorKind>.Allowed}), or continue a run with --resume RUN");
                if (parse.GetValue(tokens) is null) throw new ArgumentException("--tokens DIR is required for a new run");
                if (parse.GetValue(output) is null) throw new ArgumentException("--out RUN is required for a new run");
            }
            else if (parse.GetValue(output) is { } o && Path.GetFullPath(o) != Path.GetFullPath(resumeDir))
                throw new ArgumentException($"--out {o} differs from --resume {resumeDir}; a resumed run continues in its own folder");
            if (parse.GetValue(gpus) is { } n)
                return TrainLauncher.Launch(n, parse.Tokens.Select(t => t.Value).ToList(), resumeDir ?? parse.GetValue(output)!,
                    resumeDir is null ? parse.GetValue(batch) : GeneratorCheckpoint.ReadManifest(resumeDir).Training.Batch, parse.GetValue(device.Device)!);
            var vars = DistributedTraining.ProcessVariables();
            var env = DistributedTraining.Resolve(vars);                                     // torchrun's variables: one rank of a launched run
            if (resumeDir is null) Trainer.LocalBatchOf(parse.GetValue(batch), env.WorldSize);           // --batch is global: it must divide
            var writer = env.Rank == 0;                                                      // only rank 0 writes the run folder and prints
            var parsedKind = kindText is null ? (GeneratorKind?)null : GeneratorKinds.Parse(kindText);
            var presetName = GeneratorPresets.CanonicalName(parse.GetValue(preset)!);          // unknown presets fail before any loading
            var anchorText = parse.GetValue(anchor)!;
            var dev = device.Resolve(parse);
            DistributedTraining.CheckDevice(env, dev.type);                                  // NCCL is GPU-only
            if (env.Launched && DeviceRequest.Parse(parse.GetValue(device.Device)!).Index is null)
                dev = new torch.Device(DeviceType.CUDA, DistributedTraining.CudaDeviceFor(env, torch.cuda.device_count()));
            var lossKind = EnumNames<LossKind>.Parse(parse.GetValue(loss)!);
            var embeddingInit = EnumNames<EmbeddingInit>.Parse(parse.GetValue(initEmbeddings)!);          // a mistyped name fails before any loading
            var implementationText = parse.GetValue(implementation)!;
            var lossSpec = resumeDir is not null ? null : new LossSpec
            {
                Kind = lossKind, Tau = parse.GetValue(tau), Perplexity = parse.GetValue(perplexity), TopK = parse.GetValue(topK),
                Epsilon = parse.GetValue(epsilon), Alpha = parse.GetValue(alpha), Delta = parse.GetValue(delta),
                Anchor = anchorText.Equals("auto", StringComparison.OrdinalIgnoreCase) ? null : EnumNames<NeighborAnchor>.Parse(anchorText),
                Implementation = LossNames.ResolveImplementation(implementationText, lossKind, dev.type),
            }.Validate();                                                                    // options the loss does not read fail here too
            if (resumeDir is not null && writer) GeneratorCheckpoint.Resolve(resumeDir);               // a mistyped --resume fails before a lock file is made
            var locked = writer && Environment.GetEnvironmentVariable(TrainLauncher.LockHeldVariable) != "1";    // under --gpus the launcher holds it
            using var held = locked ? FolderLocks.Take(resumeDir ?? parse.GetValue(output)!, "snce train") : null;   // one writer per run folder, checked before any work

            PreparedRun run;
            if (resumeDir is not null)
            {
                var ignored = new Option[] { preset, loss, tau, perplexity, topK, epsilon, alpha, delta, anchor, implementation, steps, batch, lr, warmup, minLr, wd, beta2, clip, ema, dropout, initEmbeddings, cfgDrop, schedule, weighting, precision, seed, ckptEvery, valEvery, valBatches, logEvery, text }
                    .Where(o => parse.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
                if (ignored.Count > 0 && writer)
                    Console.Error.WriteLine($"snce: note: a resumed run keeps its own settings; ignoring {string.Join(", ", ignored)}");
                run = RunSetup.Resume(resumeDir, dev, parse.GetValue(tokens), writer);
                if (parsedKind is { } k && k != run.Setup.Model.Kind)
                    throw new ArgumentException($"--resume {resumeDir} is a {run.Setup.Model.Kind.Name()} run, not {k.Name()}");
            }
            else
            {
                var totalSteps = parse.GetValue(steps);
                var training = new TrainingConfig
                {
                    Steps = totalSteps, Batch = parse.GetValue(batch), Lr = parse.GetValue(lr),
                    MinLrRatio = parse.GetValue(minLr),
                    AdamW = new AdamWOptions(Beta2: parse.GetValue(beta2), WeightDecay: parse.GetValue(wd), MaxGradNorm: parse.GetValue(clip)),
                    EmaDecay = parse.GetValue(ema),
                    Precision = parse.GetValue(precision) is "auto" ? (dev.type == DeviceType.CUDA ? Precision.Bf16 : Precision.Fp32) : EnumNames<Precision>.Parse(parse.GetValue(precision)!),
                    CheckpointEvery = parse.GetValue(ckptEvery), ValidateEvery = parse.GetValue(valEvery), ValidationBatches = parse.GetValue(valBatches),
                    LogEvery = parse.GetValue(logEvery), Seed = parse.GetValue(seed),
                    Objective = new ObjectiveOptions(parse.GetValue(cfgDrop), EnumNames<MaskScheduleKind>.Parse(parse.GetValue(schedule)!), ObjectiveOptions.ParseWeighting(parse.GetValue(weighting)!)),
                };
                if (parse.GetValue(warmup) is { } w) training = training with { WarmupSteps = w };   // unset: the library's TrainingConfig.DefaultWarmupSteps
                run = RunSetup.New(new NewRun(parsedKind!.Value, parse.GetValue(tokens)!, presetName, lossSpec!, training, parse.GetValue(output)!, Dropout: parse.GetValue(dropout), Text: parse.GetValue(text), EmbeddingInit: embeddingInit), dev, writer);
            }
            using (run)
            {
                if (writer) foreach (var note in run.Notes) Console.Error.WriteLine($"snce: note: {note}");
                using var sync = env.Launched ? NcclGradientSync.Create(env, Snce.Native.Cuda.CudaDriver.Ordinal(dev), DistributedTraining.RendezvousTimeout(vars)) : null;
                return Train(run, limits, resumeDir is not null, sync);
            }
        });
        return cmd;
    }

    static int Train(PreparedRun run, RunLimits limits, bool resume, NcclGradientSync? sync)
    {
        var s = run.Setup with { Sync = sync };
        using var trainer = new Trainer(s);
        if (resume) trainer.Restore(s.RunDir);
        var m = s.Model;
        var rank = sync?.Rank ?? 0;
        var say = rank == 0 ? Console.Out : TextWriter.Null;                            // the other ranks print errors only
        say.WriteLine($"{m.Kind.Name()} generator, preset {m.Preset}: {m.ParameterCount / 1e6:F2}M parameters, K = {m.CodebookSize:N0}, grid {m.GridHeight}x{m.GridWidth}, " +
            (m.Source, m.Text) switch
            {
                ({ } src, { } t) => $"conditioned on the instruction ({t.Encoder}, {run.Captions?.Info.Captions.Length ?? 0:N0} distinct) and the source's {src.Tokens} tokens (pairs: {s.Data.Pairs})",
                (null, { } t) => $"text ({t.Encoder}, {t.MaxTokens} word pieces, {run.Captions?.Info.Captions.Length ?? 0:N0} captions)",
                ({ } src, null) => $"conditioned on the source's {src.Tokens} tokens (pairs: {s.Data.Pairs})",
                _ => $"{m.NumClasses} classes",
            });
        var l = s.Loss;
        say.WriteLine($"loss {l.Kind.Name()}" + (l.Tau is { } tau ? $", τ = {tau:G5}" : "") + (l.Epsilon is { } eps ? $", ε = {eps:G5}" : "") +
            (run.Calibration is { } c ? $" (calibrated: perplexity {c.MeanPerplexity:F2} ± {c.StdPerplexity:F2} on {c.Anchors:N0} anchors)" : "") +
            (l.Anchor is { } a ? $", anchor {a.Name()}" : "") +
            $"; {s.Training.Precision.Name()} on {s.Device}; batch {s.Training.Batch}" + (sync is { WorldSize: var w } ? $" ({trainer.LocalBatch} on each of {w} ranks, NCCL)" : "") + $", {s.Train.Count:N0} train / {s.Validation?.Count ?? 0:N0} held-out {(m.Source is null ? "images" : "pairs")}");
        say.WriteLine(resume ? $"resuming {s.RunDir} at step {trainer.Step} of {s.Training.Steps}" : $"training {s.Training.Steps} steps into {s.RunDir}");

        using var stop = new StopSignals("stopping after this step and saving a checkpoint");
        TrainResult result;
        using (var bar = rank == 0 ? new ProgressBar("train", s.Training.Steps, trainer.Step) : null)
        {
            string metrics = "";
            result = trainer.Run(limits, p =>
            {
                if (p.Loss is { } l) metrics = $"loss {l:F4} lr {p.Lr:G3}";
                if (p.Validation is { } v) metrics += $" val ce {v.HardCe:F4} acc {v.Accuracy:P1}";
                bar?.Report(p.Step, metrics);
            }, stop.Token);
        }
        sync?.Goodbye();                                                                // every rank ends here at the same step
        if (result.Reason == StopReason.NonFinite) throw new SnceUserException(result.Message);
        say.WriteLine($"{result.Message}; checkpoint {trainer.CheckpointDir} (step {result.LastCheckpointStep}), metrics {new RunFolder(s.RunDir).Metrics}");
        return result.Reason == StopReason.Cancelled ? stop.ExitCode : 0;
    }
}
