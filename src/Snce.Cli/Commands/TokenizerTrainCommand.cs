using System.CommandLine;
using System.Text.Json;
using Snce.Data;
using Snce.Losses;
using Snce.Tokenizer;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary><c>snce tokenizer train</c>: trains a tokenizer on a data set's training split, with checkpoints and --resume.</summary>
public static class TokenizerTrainCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var data = new DataOptionsCli();
        var preset = new Option<string>("--preset") { Description = $"Architecture preset: {TokenizerPresets.Allowed} (see docs/tokenizers.md).", DefaultValueFactory = _ => "small", HelpName = "NAME" };
        var codebook = new Option<int?>("--codebook") { Description = "Codebook size K (2 to 1,048,576; default: the preset's, 16,384 for small).", HelpName = "K" };
        var codeDim = new Option<int?>("--code-dim") { Description = "Code dimension D (default: the preset's).", HelpName = "D" };
        var metric = new Option<string>("--metric") { Description = $"Code dissimilarity for quantization (and for SNCE later): {Metric.Allowed}.", DefaultValueFactory = _ => "l2", HelpName = "l2|dot|cosine" };
        var quantizer = new Option<string>("--quantizer") { Description = "ema (moving-average codebook with dead-code restarts) or ibq (index backpropagation: codebook trained by AdamW through a softmax over all codes).", DefaultValueFactory = _ => "ema", HelpName = "ema|ibq" };
        var downsamples = new Option<int?>("--downsamples") { Description = "Stride-2 downsamples (default 2: 28/32 px → 8×8 tokens, 64 px → 16×16; 1 gives 16×16 at 28/32 px).", HelpName = "N" };
        var entropy = new Option<double?>("--entropy-weight") { Description = "IBQ code-entropy loss weight (default 0.1; 0 turns it off).", HelpName = "W" };
        var steps = new Option<int>("--steps") { Description = "Total optimizer steps (with --resume: the new total).", DefaultValueFactory = _ => 2000, HelpName = "N" };
        var batch = new Option<int>("--batch") { Description = "Images per step.", DefaultValueFactory = _ => 64, HelpName = "B" };
        var lr = new Option<double>("--lr") { Description = "Peak AdamW learning rate (100 warmup steps, cosine decay to 10%).", DefaultValueFactory = _ => 1e-3, HelpName = "LR" };
        var loss = new Option<string>("--loss") { Description = "Reconstruction loss: l2 (optimizes PSNR) or l1. No perceptual or GAN loss.", DefaultValueFactory = _ => "l2", HelpName = "l2|l1" };
        var seed = new Option<long>("--seed") { Description = "Seeds the initial weights and every step's batch.", DefaultValueFactory = _ => 0, HelpName = "N" };
        var logEvery = new Option<int>("--log-every") { Description = "Steps between progress reports (each reads the device once).", DefaultValueFactory = _ => 25, HelpName = "N" };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Steps between checkpoints (0: only at the end).", DefaultValueFactory = _ => 500, HelpName = "N" };
        var maxSeconds = new Option<string?>("--max-seconds") { Description = $"Stop after this much training time ({Durations.Syntax}; the checkpoint is written).", HelpName = "T" };
        var output = new Option<string>("--out") { Description = "Checkpoint folder (config.json, model.safetensors, optimizer.safetensors, training.json).", Required = true, HelpName = "DIR" };
        var resume = new Option<bool>("--resume") { Description = "Continue the checkpoint in --out (weights, optimizer, step) up to --steps." };
        var json = new Option<bool>("--json") { Description = "Print the final summary as one JSON object." };
        quantizer.AcceptOnlyFromAmong("ibq", "ema");
        loss.AcceptOnlyFromAmong("l2", "l1");

        var cmd = new Command("train", "Train a VQ tokenizer on a data set's training split: progress (loss, PSNR, utilization, it/s, ETA), periodic checkpoints, --resume.");
        data.AddTo(cmd);
        foreach (var o in new Option[] { preset, codebook, codeDim, metric, quantizer, downsamples, entropy, steps, batch, lr, loss, seed, logEvery, checkpointEvery, maxSeconds, output, resume, json })
            cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var outDir = parse.GetValue(output)!;
            using var held = FolderLocks.Take(outDir, "snce tokenizer train");             // one writer, and --out writable, before any work
            TokenizerTrainOptions options = new TokenizerTrainOptions
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr),
                Loss = parse.GetValue(loss) == "l1" ? ReconstructionLossKind.L1 : ReconstructionLossKind.L2,
                Seed = parse.GetValue(seed), LogEvery = parse.GetValue(logEvery), CheckpointEvery = parse.GetValue(checkpointEvery),
            }.Validate();
            var limits = new Snce.Training.RunLimits(TimeLimit: Durations.Parse(parse.GetValue(maxSeconds), "--max-seconds"));
            var isResume = parse.GetValue(resume);
            var existing = Snce.Training.CheckpointFolder.Resolve(outDir);
            if (!isResume && existing is not null && File.Exists(Path.Combine(existing, TokenizerCheckpoint.ConfigFile)))
                throw new ArgumentException($"{outDir} already holds a tokenizer checkpoint; pass --resume to continue it or choose another --out");
            TokenizerConfig config;
            if (isResume)
            {
                config = TokenizerCheckpoint.LoadConfig(outDir);
                CheckUnchanged(parse, config, codebook, codeDim, metric, quantizer);
            }
            else
            {
                config = TokenizerPresets.Get(parse.GetValue(preset)!);
                if (parse.GetValue(codebook) is { } k) config = config with { CodebookSize = k };
                if (parse.GetValue(codeDim) is { } d) config = config with { CodeDim = d };
                if (parse.GetValue(downsamples) is { } n) config = config with { ChannelMultipliers = Multipliers(config.ChannelMultipliers, n) };
                if (parse.GetValue(entropy) is { } w) config = config with { EntropyWeight = w };
                config = config with
                {
                    Metric = Metric.Parse(parse.GetValue(metric)!).Name,
                    Quantizer = parse.GetValue(quantizer) == "ema" ? QuantizerKind.Ema : QuantizerKind.Ibq,
                };
                config.Validate();
            }
            var dev = device.Resolve(parse);
            using var dataset = isResume
                ? TokenizerCommand.LoadDataFor(data, parse, parse.GetValue(data.Data)!, config)
                : data.Load(parse);
            if (!isResume) config = (config with { ImageSize = dataset.Size, Channels = dataset.Channels }).Validate();
            using var trainRows = dataset.IndicesOf(ImageDataset.TrainSplit);
            using var images = dataset.Images.index_select(0, trainRows);
            using var trainer = isResume
                ? TokenizerTrainer.Resume(outDir, dev, saved => saved with
                {
                    Steps = options.Steps,
                    BatchSize = Given(parse, batch) ? options.BatchSize : saved.BatchSize,
                    LearningRate = Given(parse, lr) ? options.LearningRate : saved.LearningRate,
                    Loss = Given(parse, loss) ? options.Loss : saved.Loss,
                    LogEvery = Given(parse, logEvery) ? options.LogEvery : saved.LogEvery,
                    CheckpointEvery = Given(parse, checkpointEvery) ? options.CheckpointEvery : saved.CheckpointEvery,
                })
                : TokenizerTrainer.Create(config, options, dev);
            options = trainer.Options;
            var parameters = trainer.Model.parameters().Sum(p => p.numel());
            Console.Error.WriteLine(
                $"tokenizer: {config.Quantizer.ToString().ToLowerInvariant()} quantizer, metric {config.Metric}, K = {config.CodebookSize:N0}, D = {config.CodeDim}, " +
                $"{config.GridSize}×{config.GridSize} tokens per {config.ImageSize}×{config.ImageSize} image, {parameters / 1e6:F2} M parameters, on {dev}; " +
                $"{images.shape[0]:N0} training images of {dataset.Name}" + (isResume ? $"; resuming at step {trainer.Step}" : ""));
            if (trainer.Step >= options.Steps)
                throw new ArgumentException($"the checkpoint in {outDir} is at step {trainer.Step}, which is not below --steps {options.Steps}; raise --steps to continue");
            TokenizerTrainSummary summary;
            using var stop = new StopSignals("stopping after this step and saving a checkpoint");
            using (var bar = new ProgressBar("train", options.Steps, trainer.Step))
            {
                try
                {
                    summary = trainer.Train(images, DataReference(parse.GetValue(data.Data)!), outDir,
                        p => bar.Report(p.Step, $"loss {p.Loss:F4} psnr {p.Psnr:F2} util {p.Utilization:P1} lr {p.LearningRate:G3}"), stop.Token, limits);
                }
                catch (TrainingDivergedException e)
                {
                    bar.Dispose();
                    Console.Error.WriteLine($"snce: error: {e.Message}");
                    return SnceCli.RuntimeError;
                }
            }
            var last = summary.Last;
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    out_dir = Path.GetFullPath(outDir), step = summary.LastStep, stop = summary.Stop.ToString().ToLowerInvariant(),
                    seconds = summary.Seconds, images_per_second = summary.ImagesPerSecond,
                    loss = last?.Loss, psnr = last?.Psnr, utilization = last?.Utilization,
                    codebook_size = config.CodebookSize, parameters,
                }, Json.Options));
            else
                Console.WriteLine($"trained steps {summary.FirstStep}–{summary.LastStep} ({summary.Stop.ToString().ToLowerInvariant()}) in {summary.Seconds:F1} s, " +
                    $"{summary.ImagesPerSecond:F0} images/s; last: loss {last?.Loss:F4}, training PSNR {last?.Psnr:F2} dB, utilization {last?.Utilization:P1}; checkpoint: {outDir}");
            return summary.Stop == StopReason.Cancelled ? stop.ExitCode : 0;
        });
        return cmd;
    }

    /// <summary>What training.json records as the data (so eval can reload it): a folder as an absolute path, a data set by name.</summary>
    internal static string DataReference(string nameOrDir) =>
        !Snce.Data.BuiltIn.BuiltInDataSets.IsBuiltInName(nameOrDir) && Directory.Exists(nameOrDir) ? Path.GetFullPath(nameOrDir) : nameOrDir;

    /// <summary>True when the option was on the command line (not its default).</summary>
    static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>With --resume the model is the checkpoint's; options that would change it must agree or be left out.</summary>
    static void CheckUnchanged(ParseResult parse, TokenizerConfig config, Option<int?> codebook, Option<int?> codeDim, Option<string> metric, Option<string> quantizer)
    {
        void Same(string option, object given, object saved)
        {
            if (!Equals(given, saved))
                throw new ArgumentException($"{option} {given} does not match the checkpoint being resumed ({saved}); a resumed run keeps the model's shape (leave {option} out)");
        }
        if (parse.GetValue(codebook) is { } k) Same("--codebook", k, config.CodebookSize);
        if (parse.GetValue(codeDim) is { } d) Same("--code-dim", d, config.CodeDim);
        if (Given(parse, metric)) Same("--metric", Metric.Parse(parse.GetValue(metric)!).Name, config.Metric);
        if (Given(parse, quantizer)) Same("--quantizer", parse.GetValue(quantizer)!, config.Quantizer.ToString().ToLowerInvariant());
    }

    /// <summary>A preset's multipliers cut or extended (repeating the last) to <paramref name="downsamples"/> + 1 levels.</summary>
    static int[] Multipliers(int[] preset, int downsamples)
    {
        if (downsamples is < 0 or > 5) throw new ArgumentException($"--downsamples must be in 0..5, got {downsamples}");
        return [.. Enumerable.Range(0, downsamples + 1).Select(i => preset[Math.Min(i, preset.Length - 1)])];
    }
}
