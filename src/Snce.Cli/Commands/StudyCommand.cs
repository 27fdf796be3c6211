using System.CommandLine;
using System.Globalization;
using Snce.Cli.Study;
using Snce.Native;
using Snce.Study;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce study</c>: the CE-vs-SNCE study end to end with the product's own verbs (tokenizers per codebook size,
/// generators per loss, FD-ResNet18 curves, report). <c>--preset quick</c> is the CPU demo; <c>gpu</c> is the H200 grid.
/// </summary>
public static class StudyCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "quick (CPU, one tokenizer, AR with CE and SNCE, minutes) or gpu (K = 1,024…65,536, AR and masked, baselines, τ sweep, 3 seeds at the focus K).", DefaultValueFactory = _ => "quick", HelpName = "quick|gpu" };
        var data = new Option<string?>("--data") { Description = "Data set name or image folder (default: the preset's, fashion-mnist).", HelpName = "NAME|DIR" };
        var dataDir = new Option<string?>("--data-dir") { Description = "Where fetched data sets are cached.", HelpName = "DIR" };
        var limit = new Option<int?>("--limit") { Description = "Use only N images of each split (a fixed pseudo-random subset; also bounds the real FD reference).", HelpName = "N" };
        var evalLimit = new Option<int?>("--eval-limit") { Description = "Images per split for evaluation only (bounds the real FD reference; default: --limit).", HelpName = "N" };
        var codebooks = new Option<string?>("--codebooks") { Description = "Codebook sizes, e.g. 1024,4096,16384.", HelpName = "K,K,..." };
        var objectives = new Option<string?>("--objectives") { Description = "Generators: ar, mask (comma-separated).", HelpName = "ar,mask" };
        var losses = new Option<string?>("--losses") { Description = "Losses at every K (must include ce): ce, snce, label-smoothing, stochastic.", HelpName = "LIST" };
        var focusLosses = new Option<string?>("--focus-losses") { Description = "Baselines trained only at the focus K (label-smoothing uses ε matched to SNCE); 'none' for none.", HelpName = "LIST" };
        var focus = new Option<int?>("--focus-codebook") { Description = "K of the baseline, τ-sweep and extra-seed cells (default: the preset's, 16,384 for gpu, when it is one of --codebooks; else the middle codebook).", HelpName = "K" };
        var perplexity = new Option<double?>("--perplexity") { Description = "SNCE target perplexity (τ calibrated per tokenizer); default: the preset's (quick 2, gpu 16).", HelpName = "P" };
        var sweep = new Option<string?>("--sweep-perplexities") { Description = "Other SNCE perplexities at the focus K (first objective); 'none' for none.", HelpName = "P,P" };
        var seeds = new Option<string?>("--seeds") { Description = "Seeds of every cell.", HelpName = "S,S" };
        var tuneLrs = new Option<string?>("--tune-lrs") { Description = "Tuning: other peak learning rates, each run for every loss × objective × K at the first seed (the same effort for every arm); labelled e.g. ce-lr5e-4.", HelpName = "LR,LR" };
        var onlyTuning = new Option<bool>("--only-tuning") { Description = "Run only the --tune-lrs/--tune-dropouts/--tune-codebook-embeddings runs, not the main cells (trained in an earlier lease; merge with snce report)." };
        var tuneDropouts = new Option<string?>("--tune-dropouts") { Description = "Tuning: other backbone dropouts, run like --tune-lrs; labelled e.g. snce-do0.1.", HelpName = "P,P" };
        var tuneEmbeddings = new Option<bool>("--tune-codebook-embeddings") { Description = "Tuning: also run every loss × objective × K at the first seed with token embeddings from the codebook ('snce train --init-embeddings codebook'); labelled e.g. snce-cbemb." };
        var headline = new Option<string?>("--headline-seeds") { Description = "Extra seeds for ce and snce at the focus K; 'none' for none.", HelpName = "S,S" };
        var tokPreset = new Option<string?>("--tokenizer-preset") { Description = "Tokenizer preset (tiny, small, base).", HelpName = "NAME" };
        var tokSteps = new Option<int?>("--tokenizer-steps") { Description = "Tokenizer training steps.", HelpName = "N" };
        var tokSeconds = new Option<string?>("--tokenizer-max-seconds") { Description = $"Cap on each tokenizer's training time ({Durations.Syntax}; whole seconds).", HelpName = "T" };
        var classifierSteps = new Option<int?>("--classifier-steps") { Description = "Steps of the classifier behind class accuracy (default: the preset's; quick 300, gpu 1500).", HelpName = "N" };
        var genPreset = new Option<string?>("--generator-preset") { Description = "Generator preset (tiny, S, B).", HelpName = "NAME" };
        var steps = new Option<int?>("--steps") { Description = "Generator training steps (the same for every run).", HelpName = "N" };
        var batch = new Option<int?>("--batch") { Description = "Generator batch size.", HelpName = "B" };
        var lr = new Option<double?>("--lr") { Description = "Generator peak learning rate (default: the preset's; quick 1e-3, gpu 1e-3).", HelpName = "LR" };
        var warmup = new Option<long?>("--warmup") { Description = "Generator linear warmup steps (default: 5% of --steps, at most 2000).", HelpName = "N" };
        var minLr = new Option<double?>("--min-lr-ratio") { Description = "Final LR of the cosine decay as a fraction of the peak (default 0.1).", HelpName = "R" };
        var wd = new Option<double?>("--weight-decay") { Description = "Generator AdamW weight decay (linear weights only; default 0.05).", HelpName = "W" };
        var dropout = new Option<double?>("--dropout") { Description = "Generator backbone dropout (attention weights and residual branches; default: the preset's, quick 0, gpu 0.1).", HelpName = "P" };
        var ema = new Option<double?>("--ema") { Description = "EMA decay of the generator weights (default 0.999).", HelpName = "D" };
        var cfgDropout = new Option<double?>("--cfg-dropout") { Description = "Probability of training on the null class (default 0.1).", HelpName = "P" };
        var cfgScale = new Option<double?>("--cfg") { Description = "Classifier-free guidance scale of every evaluation and sample grid (default 2).", HelpName = "S" };
        var cfgSchedule = CfgScheduleOption.Create("Every evaluation and sample grid: ");
        var keepBest = new Option<string?>("--keep-best") { Description = "Also keep each run's best checkpoint (RUN/best) by val-ce or fd at the evaluation points; 'none' for the last only.", HelpName = "val-ce|fd|none" };
        var finalImages = new Option<int?>("--final-eval-images") { Description = "Generated images of the final evaluation of the last (and best) checkpoint, written to RUN/final-last.json (final-best.json); default: --eval-images.", HelpName = "N" };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Evaluate FD-ResNet18 every N steps.", HelpName = "N" };
        var evalImages = new Option<int?>("--eval-images") { Description = "Generated images per evaluation (FD compares only at equal n).", HelpName = "N" };
        var parallel = new Option<int?>("--parallel") { Description = "Jobs at a time (default: 1 on the CPU, 8 on a GPU).", HelpName = "N" };
        var device = new Option<string>("--device") { Description = $"Where the jobs compute: {DeviceRequest.Allowed}.", DefaultValueFactory = _ => "auto", HelpName = "auto|cpu|cuda|cuda:N" };
        var prepareOnly = new Option<bool>("--prepare-only") { Description = "Stop after the tokenizers, shards and classifier (re-run without it to continue)." };
        var timeLimit = new Option<string?>("--time-limit") { Description = $"Time after which no job starts ({Durations.Syntax}; running ones get 60 s more); the report covers what finished, every run at the same steps.", HelpName = "T" };
        var output = new Option<string>("--out") { Description = "Study folder (re-running with the same folder resumes).", DefaultValueFactory = _ => "study", HelpName = "DIR" };
        var cmd = new Command("study", "Run the CE-vs-SNCE study with Snce's own verbs: tokenizers per codebook size, generators per loss, FD-ResNet18 curves, plots and STUDY.md.");
        foreach (var o in new Option[] { preset, data, dataDir, limit, evalLimit, codebooks, objectives, losses, focusLosses, focus, perplexity, sweep, seeds, headline, tuneLrs, tuneDropouts, tuneEmbeddings, onlyTuning,
                     tokPreset, tokSteps, tokSeconds, classifierSteps, genPreset, steps, batch, lr, warmup, minLr, wd, dropout, ema, cfgDropout, cfgScale, cfgSchedule, keepBest, evalEvery, evalImages, finalImages, parallel, prepareOnly, timeLimit, device, output })
            cmd.Options.Add(o);
        cmd.SetAction(async parse =>
        {
            var c = StudyConfig.Named(parse.GetValue(preset)!);
            c = c with
            {
                Data = parse.GetValue(data) ?? c.Data,
                Limit = parse.GetValue(limit) ?? c.Limit,
                EvalLimit = parse.GetValue(evalLimit) ?? c.EvalLimit,
                Codebooks = Ints(parse.GetValue(codebooks)) ?? c.Codebooks,
                Objectives = List(parse.GetValue(objectives)) ?? c.Objectives,
                Losses = List(parse.GetValue(losses)) ?? c.Losses,
                FocusLosses = List(parse.GetValue(focusLosses)) ?? c.FocusLosses,
                FocusCodebook = FocusFor(parse.GetValue(focus), c.FocusCodebook, Ints(parse.GetValue(codebooks)) ?? c.Codebooks),
                Perplexity = parse.GetValue(perplexity) ?? c.Perplexity,
                SweepPerplexities = List(parse.GetValue(sweep))?.Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray() ?? c.SweepPerplexities,
                Seeds = List(parse.GetValue(seeds))?.Select(long.Parse).ToArray() ?? c.Seeds,
                HeadlineSeeds = List(parse.GetValue(headline))?.Select(long.Parse).ToArray() ?? c.HeadlineSeeds,
                TuneLrs = List(parse.GetValue(tuneLrs))?.Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray() ?? c.TuneLrs,
                TuneDropouts = List(parse.GetValue(tuneDropouts))?.Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray() ?? c.TuneDropouts,
                TuneCodebookEmbeddings = parse.GetValue(tuneEmbeddings) || c.TuneCodebookEmbeddings,
                OnlyTuning = parse.GetValue(onlyTuning) || c.OnlyTuning,
                TokenizerPreset = parse.GetValue(tokPreset) ?? c.TokenizerPreset,
                TokenizerSteps = parse.GetValue(tokSteps) ?? c.TokenizerSteps,
                TokenizerMaxSeconds = Durations.Parse(parse.GetValue(tokSeconds), "--tokenizer-max-seconds") is { } cap ? (int)Math.Ceiling(cap.TotalSeconds) : c.TokenizerMaxSeconds,
                ClassifierSteps = parse.GetValue(classifierSteps) ?? c.ClassifierSteps,
                Preset = parse.GetValue(genPreset) ?? c.Preset,
                Steps = parse.GetValue(steps) ?? c.Steps,
                Batch = parse.GetValue(batch) ?? c.Batch,
                EvalEvery = parse.GetValue(evalEvery) ?? c.EvalEvery,
                EvalImages = parse.GetValue(evalImages) ?? c.EvalImages,
                FinalEvalImages = parse.GetValue(finalImages) ?? c.FinalEvalImages,
                Lr = parse.GetValue(lr) ?? c.Lr,
                Warmup = parse.GetValue(warmup) ?? c.Warmup,
                MinLrRatio = parse.GetValue(minLr) ?? c.MinLrRatio,
                WeightDecay = parse.GetValue(wd) ?? c.WeightDecay,
                Dropout = parse.GetValue(dropout) ?? c.Dropout,
                EmaDecay = parse.GetValue(ema) ?? c.EmaDecay,
                CfgDropout = parse.GetValue(cfgDropout) ?? c.CfgDropout,
                Cfg = parse.GetValue(cfgScale) ?? c.Cfg,
                CfgSchedule = parse.GetResult(cfgSchedule) is { Implicit: false } ? CfgScheduleOption.Parse(parse, cfgSchedule) : c.CfgSchedule,
                KeepBest = parse.GetValue(keepBest) is { } kb ? (kb.Equals("none", StringComparison.OrdinalIgnoreCase) ? null : kb.ToLowerInvariant()) : c.KeepBest,
            };
            c.Validate();
            var request = DeviceRequest.Parse(parse.GetValue(device)!);
            // Children resolve the device themselves; find PyTorch's libtorch once for all of them.
            if (request.Kind != "cpu" && Environment.GetEnvironmentVariable(LibTorchLocator.EnvironmentVariable) is null or ""
                && (request.Kind == "cuda" || LibTorchLocator.NvidiaDriverPresent()) && LibTorchLocator.FromPython() is { } lib)
                Environment.SetEnvironmentVariable(LibTorchLocator.EnvironmentVariable, lib);
            var onGpu = request.Kind == "cuda" || (request.Kind == "auto" && Environment.GetEnvironmentVariable(LibTorchLocator.EnvironmentVariable) is { Length: > 0 });
            var jobs = parse.GetValue(parallel) ?? (onGpu ? 8 : 1);
            if (jobs < 1) throw new ArgumentException($"--parallel must be at least 1, got {jobs}");
            var executor = new StudyExecutor(c, parse.GetValue(output)!, request.ToString(), parse.GetValue(dataDir), jobs, parse.GetValue(prepareOnly),
                Durations.Parse(parse.GetValue(timeLimit), "--time-limit"));
            using var held = FolderLocks.Take(parse.GetValue(output)!, "snce study");       // one study per folder (each job locks its own folder too)
            using var stop = new StopSignals("the training jobs finish their step and save a checkpoint, the others are stopped; re-run the same command to continue");
            try
            {
                var code = await executor.RunAsync(stop.Token, () => StopSignals.Name(stop.Received!.Value));
                return stop.Received is null ? code : stop.ExitCode;
            }
            catch (OperationCanceledException) when (stop.Received is { } signal)
            {
                Console.Error.WriteLine($"snce: study stopped by {StopSignals.Name(signal)}; every job that was training saved its checkpoint; re-run the same command to continue");
                return stop.ExitCode;
            }
        });
        return cmd;
    }

    static string[]? List(string? text) =>
        text is null ? null : text.Equals("none", StringComparison.OrdinalIgnoreCase) ? [] : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The focus K: the one given; else the preset's while it is one of <paramref name="codebooks"/> (so `--preset gpu
    /// --codebooks 1024,65536` does not fail on the preset's 16,384); else null (the middle codebook). A given K is checked later.
    /// </summary>
    public static int? FocusFor(int? given, int? preset, int[] codebooks) => given ?? (preset is { } p && codebooks.Contains(p) ? p : null);

    static int[]? Ints(string? text) => List(text)?.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
}
