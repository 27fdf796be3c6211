using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Snce.Models;
using Snce.Study;
using Snce.Training;

namespace Snce.Cli.Study;

/// <summary>
/// Runs a <see cref="StudyConfig"/> by calling the product's own verbs, exactly as a user would: data fetch,
/// tokenizer train/eval, tokenize, classifier train, then every generator run in segments of EvalEvery steps
/// (train … --max-steps s / train --resume …, then eval --checkpoint … --log-to), sample grids, report.
/// Every stage is skipped when its output exists, so a killed study resumes where it stopped.
/// Layout under OUT: tokenizers/K, shards/K, classifier/, runs/NAME, samples/NAME.png, report/, logs/, study.json, STUDY.md.
/// </summary>
public sealed class StudyExecutor(StudyConfig config, string outDir, string device, string? dataDir, int parallel, bool prepareOnly = false,
    TimeSpan? timeLimit = null)
{
    readonly string root = Path.GetFullPath(outDir);
    readonly ConcurrentBag<StudySummary.Job> jobs = [];
    readonly ConcurrentDictionary<string, bool> failedRuns = new();
    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly object consoleGate = new();
    CancellationToken userCancel;
    Func<string> userStopReason = () => "SIGTERM";

    string Dir(params string[] parts) => Path.Combine([root, .. parts]);
    string Log(string name) => Dir("logs", name + ".log");

    string[] DataArgs(bool eval = false) => [
        "--data", config.Data, .. dataDir is null ? Array.Empty<string>() : ["--data-dir", dataDir],
        .. (eval ? config.EvalLimit ?? config.Limit : config.Limit) is { } l ? ["--limit", l.ToString(CultureInfo.InvariantCulture)] : Array.Empty<string>()];

    /// <summary>After the time limit no job starts; this long after it, running jobs are stopped. The report is still written.</summary>
    static readonly TimeSpan Grace = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs every stage not done yet. When <paramref name="userCancel"/> fires, the running jobs that train are asked to
    /// stop after their step and save (the line <paramref name="stopReason"/> gives, e.g. the study's own signal, is
    /// forwarded to them), the others are killed, and <see cref="OperationCanceledException"/> is thrown once they have
    /// all ended; re-running the same study resumes them.
    /// </summary>
    public async Task<int> RunAsync(CancellationToken userCancel, Func<string>? stopReason = null)
    {
        this.userCancel = userCancel;
        if (stopReason is not null) userStopReason = stopReason;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(userCancel);
        if (timeLimit is { } t) limit.CancelAfter(t + Grace);
        var cancel = limit.Token;
        try
        {
            return await RunStagesAsync(cancel) ?? await FinishAsync(userCancel);
        }
        catch (OperationCanceledException) when (!userCancel.IsCancellationRequested)
        {
            Say($"study: --time-limit reached; stopped the running jobs");
            return await FinishAsync(userCancel);
        }
    }

    /// <summary>The data, tokenizer, classifier and run stages; returns an exit code to stop early with, or null to go on to the report.</summary>
    async Task<int?> RunStagesAsync(CancellationToken cancel)
    {
        Directory.CreateDirectory(root);
        AtomicFile.WriteAllText(Dir("study-config.json"), JsonSerializer.Serialize(config, Json.Options));
        var runs = config.Runs();
        Say($"study: {config.Codebooks.Length} tokenizer(s), {runs.Count} generator run(s) × {config.EvalSteps().Count} evaluations, {parallel} at a time, device {device}; logs in {Dir("logs")}");

        if (!Directory.Exists(config.Data))
            await Job("data", "data", ["data", "fetch", config.Data, .. dataDir is null ? Array.Empty<string>() : ["--data-dir", dataDir]], cancel);

        var prep = config.Codebooks.Select(k => (Func<Task>)(() => Tokenizer(k, cancel))).Append(() => Classifier(cancel));
        await ForEachParallel(prep, cancel);
        var missing = config.Codebooks.Where(k => !File.Exists(Dir("shards", K(k), "shards.json"))).ToList();
        if (missing.Count > 0) throw new SnceUserException($"tokenizers failed for K = {string.Join(", ", missing)}; see {Dir("logs")}");
        if (prepareOnly)
        {
            Say($"study: tokenizers, shards and classifier ready in {clock.Elapsed:hh\\:mm\\:ss}; run the same command without --prepare-only to train the generators");
            return jobs.Any(j => !j.Ok) ? SnceCli.RuntimeError : 0;
        }

        // Breadth first: every run reaches step s before any run trains past it, so a time limit leaves all
        // curves at the same steps (a fair comparison) instead of some runs finished and others not started.
        using var bar = new ProgressBar("runs", runs.Count * config.EvalSteps().Count);
        var done = 0;
        foreach (var run in runs) WriteRunConfig(run);
        foreach (var step in config.EvalSteps())
        {
            var live = runs.Where(r => !failedRuns.ContainsKey(r.Name)).ToList();
            await ForEachParallel(live.Select(r => (Func<Task>)(async () =>
            {
                if (!await Segment(r, step, cancel)) failedRuns[r.Name] = true;
                bar.Report(Interlocked.Increment(ref done));
            })), cancel);
        }
        await ForEachParallel(runs.Where(r => !failedRuns.ContainsKey(r.Name)).Select(r => (Func<Task>)(() => Grid(r, cancel))), cancel);
        if (config.FinalEvalImages is not null || config.KeepBest is not null)
            await ForEachParallel(runs.Where(r => !failedRuns.ContainsKey(r.Name)).Select(r => (Func<Task>)(() => FinalEval(r, cancel))), cancel);
        bar.Dispose();

        return null;
    }

    /// <summary>Report over whatever runs exist, study.json and STUDY.md; the exit code.</summary>
    async Task<int> FinishAsync(CancellationToken cancel)
    {
        var runs = config.Runs();
        var finished = runs.Where(r => new RunFolder(Dir("runs", r.Name)).HasMetrics).Select(r => Dir("runs", r.Name)).ToList();
        if (finished.Count > 0) await Job("report", "report", ["report", .. finished, "--out", Dir("report")], cancel);
        var summary = StudySummary.Write(root, config, runs, jobs.OrderBy(j => j.Name, StringComparer.Ordinal).ToList(), clock.Elapsed);
        var failed = jobs.Where(j => !j.Ok).ToList();
        Say($"study: {runs.Count - failedRuns.Count} of {runs.Count} runs went through every stage in {clock.Elapsed:hh\\:mm\\:ss}; summary {summary}");
        foreach (var f in failed) Say($"  FAILED {f.Name}: {f.Error} (log {f.Log})");
        PrintAnswers(summary);
        return failed.Count == 0 ? 0 : SnceCli.RuntimeError;
    }

    /// <summary>Shows the CE-vs-SNCE table of STUDY.md and where the plots and sample grids are.</summary>
    void PrintAnswers(string studyMd)
    {
        var lines = File.ReadAllLines(studyMd);
        var start = Array.FindIndex(lines, l => l.StartsWith("## CE vs SNCE", StringComparison.Ordinal));
        if (start < 0) return;
        var end = Array.FindIndex(lines, start + 1, l => l.StartsWith("## ", StringComparison.Ordinal));
        Console.WriteLine();
        foreach (var l in lines[start..(end < 0 ? lines.Length : end)]) Console.WriteLine(l);
        if (Directory.Exists(Dir("report")))
            foreach (var png in Directory.GetFiles(Dir("report"), "*.png").Order()) Console.WriteLine($"plot: {png}");
        if (Directory.Exists(Dir("samples")))
            foreach (var png in Directory.GetFiles(Dir("samples"), "*.png").Order()) Console.WriteLine($"samples: {png}");
        Console.WriteLine($"full report: {studyMd}");
    }

    static string K(int k) => k.ToString(CultureInfo.InvariantCulture);

    async Task Tokenizer(int k, CancellationToken cancel)
    {
        var tok = Dir("tokenizers", K(k));
        var name = $"tokenizer-K{k}";
        if (!File.Exists(Path.Combine(tok, "eval.json")))
        {
            // A study stopped while this tokenizer trained left its checkpoint (it saves when asked to stop): continue it.
            // A finished training (its summary exists) whose evaluation did not run is not trained again.
            var at = File.Exists(tok + ".train.json") ? (long?)null : TokenizerStep(tok);
            if (at >= config.TokenizerSteps)
                Say($"{name}: the checkpoint in {tok} is at step {at}, not below --tokenizer-steps {config.TokenizerSteps}; using it as it is");
            else if (!File.Exists(tok + ".train.json") && !await Job(name, "tokenizer", [
                    "tokenizer", "train", .. at is null ? Array.Empty<string>() : ["--resume"], .. DataArgs(), "--preset", config.TokenizerPreset, "--codebook", K(k), "--quantizer", config.Quantizer,
                    "--metric", config.Metric, "--steps", I(config.TokenizerSteps), "--batch", I(config.TokenizerBatch),
                    .. config.TokenizerMaxSeconds is { } s ? ["--max-seconds", I(s)] : Array.Empty<string>(),
                    "--checkpoint-every", "0", "--device", device, "--out", tok, "--json"], cancel, stdoutTo: Path.Combine(tok + ".train.json")))
                return;
            if (!await Job(name, "tokenizer", ["tokenizer", "eval", "--tokenizer", tok, .. DataArgs(), "--device", device, "--json",
                    "--grid", Dir("tokenizers", $"reconstructions-K{k}.png")], cancel, stdoutTo: Path.Combine(tok, "eval.json")))
                return;
            if (File.Exists(tok + ".train.json")) File.Move(tok + ".train.json", Path.Combine(tok, "train.json"), overwrite: true);
        }
        if (!File.Exists(Dir("shards", K(k), "shards.json")))
            await Job(name, "tokenizer", ["tokenize", "--tokenizer", tok, .. DataArgs(), "--latents", "full", "--device", device, "--out", Dir("shards", K(k)), "--overwrite", "--json"],   // no shards.json: any files there are a killed run's
                cancel, stdoutTo: Dir("tokenizers", $"tokenize-K{k}.json"));
    }

    async Task Classifier(CancellationToken cancel)
    {
        if (File.Exists(Dir("classifier.json"))) return;
        await Job("classifier", "classifier", ["classifier", "train", .. DataArgs(), "--steps", I(config.ClassifierSteps), "--device", device,
            "--out", Dir("classifier"), "--json"], cancel, stdoutTo: Dir("classifier.json"));
    }

    void WriteRunConfig(StudyRun run)
    {
        var dir = Dir("runs", run.Name);
        Directory.CreateDirectory(dir);
        // Flat config for 'snce report': the label groups seeds of one cell (snce-p4 apart from snce).
        var flat = new JsonObject
        {
            ["loss"] = run.Label, ["loss_name"] = run.Loss, ["objective"] = run.Objective == "mask" ? "masked" : "autoregressive",
            ["codebook_size"] = run.CodebookSize, ["seed"] = run.Seed, ["perplexity"] = run.Perplexity, ["preset"] = config.Preset,
            ["steps"] = config.Steps, ["batch"] = config.Batch, ["eval_images"] = config.EvalImages, ["cfg"] = config.Cfg, ["cfg_schedule"] = config.CfgSchedule.Name(),
            ["lr"] = run.Lr, ["warmup"] = config.Warmup, ["weight_decay"] = config.WeightDecay, ["dropout"] = run.Dropout, ["keep_best"] = config.KeepBest,
            ["embedding_init"] = run.EmbeddingInit.Name(),
        };
        AtomicFile.WriteAllText(new RunFolder(dir).Config, flat.ToJsonString(Json.Options));
    }

    /// <summary>Trains <paramref name="run"/> up to <paramref name="step"/> (new or resumed) and evaluates it there; false on failure.</summary>
    async Task<bool> Segment(StudyRun run, int step, CancellationToken cancel)
    {
        var dir = Dir("runs", run.Name);
        if (EvaluatedAt(dir, step)) return true;
        string[] train = CheckpointStep(dir) is { } at
            ? (at >= step ? [] : ["train", "--resume", dir, "--max-steps", I(step), "--device", device])
            : ["train", run.Objective, "--tokens", Dir("shards", K(run.CodebookSize)), "--preset", config.Preset, "--loss", run.Loss,
               .. run.Perplexity is { } p ? ["--perplexity", p.ToString(CultureInfo.InvariantCulture)] : Array.Empty<string>(),
               "--steps", I(config.Steps), "--batch", I(config.Batch), "--lr", D(run.Lr),
               .. config.Warmup is { } w ? ["--warmup", w.ToString(CultureInfo.InvariantCulture)] : Array.Empty<string>(),
               "--min-lr-ratio", D(config.MinLrRatio), "--weight-decay", D(config.WeightDecay), "--dropout", D(run.Dropout),
               "--ema", D(config.EmaDecay), "--cfg-dropout", D(config.CfgDropout),
               .. run.EmbeddingInit == EmbeddingInit.Random ? Array.Empty<string>() : ["--init-embeddings", run.EmbeddingInit.Name()],
               "--seed", run.Seed.ToString(CultureInfo.InvariantCulture), "--validate-every", I(config.EvalEvery),
               "--checkpoint-every", I(config.EvalEvery), "--max-steps", I(step), "--device", device, "--out", dir];
        if (train.Length > 0 && !await Job(run.Name, "run", train, cancel)) return false;
        return await Job(run.Name, "run", ["eval", "--checkpoint", dir, .. DataArgs(eval: true), "--classifier", Dir("classifier"), "--n", I(config.EvalImages),
            .. Guidance(), "--sampling-steps", I(config.SamplingSteps), "--seed", "0",
            "--device", device, "--log-to", dir, .. config.KeepBest is { } rule ? ["--keep-best", rule] : Array.Empty<string>(), "--json"], cancel);
    }

    /// <summary>
    /// The final evaluation at <see cref="StudyConfig.FinalEvalImages"/> samples of the last checkpoint (RUN/final-last.json)
    /// and of the best one (RUN/final-best.json, with --keep-best); not logged into metrics.jsonl, whose curves stay at one n.
    /// </summary>
    async Task FinalEval(StudyRun run, CancellationToken cancel)
    {
        var dir = Dir("runs", run.Name);
        var folder = new RunFolder(dir);
        var which = new List<(string Name, string Checkpoint)> { ("last", dir) };
        if (config.KeepBest is not null && Directory.Exists(folder.Best)) which.Add(("best", folder.Best));
        foreach (var (name, checkpoint) in which)
        {
            var result = folder.FinalEvaluation(name);
            if (File.Exists(result)) continue;
            await Job(run.Name, "run", ["eval", "--checkpoint", checkpoint, .. DataArgs(eval: true), "--classifier", Dir("classifier"), "--n", I(config.FinalEvalImages ?? config.EvalImages),
                .. Guidance(), "--sampling-steps", I(config.SamplingSteps), "--seed", "0", "--device", device, "--json"], cancel, stdoutTo: result);
        }
    }

    static string D(double v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>The guidance arguments of every evaluation and grid.</summary>
    string[] Guidance() => ["--cfg", D(config.Cfg), "--cfg-schedule", config.CfgSchedule.Name()];

    async Task Grid(StudyRun run, CancellationToken cancel)
    {
        var grid = Dir("samples", run.Name + ".png");
        if (!File.Exists(grid))
            await Job(run.Name, "run", ["sample", "--checkpoint", Dir("runs", run.Name), "--n", I(config.GridImages), .. Guidance(),
                "--steps", I(config.SamplingSteps), "--seed", "0", "--device", device, "--out", grid], cancel);
    }

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>The step of the tokenizer checkpoint in <paramref name="dir"/>, or null when it has none.</summary>
    static long? TokenizerStep(string dir)
    {
        try { return Snce.Tokenizer.TokenizerCheckpoint.LoadState(dir)?.Step; }
        catch (FileNotFoundException) { return null; }
    }

    /// <summary>The step of the run's checkpoint, or null when it has none.</summary>
    static long? CheckpointStep(string dir)
    {
        try { return GeneratorCheckpoint.ReadManifest(dir).State.Step; }
        catch (FileNotFoundException) { return null; }
    }

    /// <summary>True when metrics.jsonl holds an eval record (with fd) at <paramref name="step"/>.</summary>
    static bool EvaluatedAt(string dir, long step)
    {
        var path = new RunFolder(dir).Metrics;
        if (!File.Exists(path)) return false;
        foreach (var line in File.ReadLines(path))
        {
            if (!line.Contains("\"fd\"", StringComparison.Ordinal)) continue;
            var o = JsonNode.Parse(line);
            if (o?["split"]?.GetValue<string>() == "eval" && o["step"]?.GetValue<long>() == step) return true;
        }
        return false;
    }

    /// <summary>Runs one child verb; records it; on failure keeps the study going (the job's later stages are skipped).</summary>
    async Task<bool> Job(string name, string stage, string[] args, CancellationToken cancel, string? stdoutTo = null)
    {
        var sw = Stopwatch.StartNew();
        var log = Log(name);
        var what = $"{name}: {args[0]}{(args.Length > 1 && args[0] is "tokenizer" or "classifier" or "data" or "train" && !args[1].StartsWith('-') ? " " + args[1] : "")}";
        if (timeLimit is { } t && clock.Elapsed > t && stage != "report")
        {
            jobs.Add(new StudySummary.Job(what, stage, false, 0, log, "not started: --time-limit reached"));
            return false;
        }
        int code;
        string stdout;
        try
        {
            (code, stdout) = await SelfProcess.RunAsync(args, log, cancel, StopReason, SelfProcess.ThreadShare(parallel, Environment.ProcessorCount));
        }
        catch (OperationCanceledException)
        {
            var how = SelfProcess.SavesOnStop(args) ? "stopped after its step, checkpoint saved" : "stopped";
            jobs.Add(new StudySummary.Job(what, stage, false, sw.Elapsed.TotalSeconds, log, $"{how}: {StopReason()}"));
            throw;
        }
        var ok = code == 0;
        if (ok && stdoutTo is not null) AtomicFile.WriteAllText(stdoutTo, stdout);
        string? error = ok ? null : LastError(log) ?? $"exit {code}";
        jobs.Add(new StudySummary.Job(what, stage, ok, sw.Elapsed.TotalSeconds, log, error));
        if (!ok) Say($"FAILED {name} ({string.Join(' ', args.Take(2))}): {error}; log {log}");
        return ok;
    }

    /// <summary>What the running jobs are told when they are stopped: the study's own signal, or --time-limit.</summary>
    string StopReason() => userCancel.IsCancellationRequested ? userStopReason() : "--time-limit";

    static string? LastError(string log) =>
        File.ReadLines(log).Reverse().FirstOrDefault(l => l.StartsWith("snce: error", StringComparison.Ordinal) || l.Contains("Exception", StringComparison.Ordinal));

    async Task ForEachParallel(IEnumerable<Func<Task>> work, CancellationToken cancel)
    {
        using var gate = new SemaphoreSlim(parallel);
        var tasks = work.Select(async w =>
        {
            await gate.WaitAsync(cancel);
            try { await w(); }
            finally { gate.Release(); }
        }).ToList();
        await Task.WhenAll(tasks);
    }

    void Say(string line)
    {
        lock (consoleGate) Console.Error.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] {line}");
    }
}
