using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Snce.Evaluation.Reports;
using Snce.Losses;
using Snce.Training;

namespace Snce.Study;

/// <summary>
/// Writes a study's record: study.json (the config, every run with its final metrics, every child job with its
/// time and outcome) and STUDY.md (tokenizers, classifier, the answers CE vs SNCE in numbers, then the run report).
/// </summary>
public static class StudySummary
{
    /// <summary>A child job as the executor recorded it.</summary>
    public sealed record Job(string Name, string Stage, bool Ok, double Seconds, string Log, string? Error);

    /// <summary>Writes study.json and STUDY.md under <paramref name="root"/>; returns the STUDY.md path.</summary>
    public static string Write<TJob>(string root, StudyConfig config, IReadOnlyList<StudyRun> runs, IReadOnlyList<TJob> jobs, TimeSpan elapsed)
    {
        var jobList = jobs.Select(j => JsonSerializer.SerializeToNode(j)!).ToList();
        var metrics = runs.Select(r => Path.Combine(root, "runs", r.Name))
            .Where(d => new RunFolder(d).HasMetrics)
            .Select(RunReader.Read).ToList();
        var groups = RunGroup.Of(metrics);
        var ci = CultureInfo.InvariantCulture;

        var json = new JsonObject
        {
            ["config"] = JsonSerializer.SerializeToNode(config),
            ["elapsed_s"] = Math.Round(elapsed.TotalSeconds, 1),
            ["machine"] = $"{Environment.MachineName}, {Environment.ProcessorCount} CPU threads",
            ["tokenizers"] = new JsonArray(config.Codebooks.Select(k => ReadJson(Path.Combine(root, "tokenizers", k.ToString(ci), "eval.json"))).ToArray()),
            ["classifier"] = ReadJson(Path.Combine(root, "classifier.json")),
            ["runs"] = new JsonArray(metrics.Select(m => (JsonNode)new JsonObject
            {
                ["name"] = m.Info.Name, ["objective"] = m.Info.Objective, ["loss"] = m.Info.Loss, ["codebook_size"] = m.Info.CodebookSize,
                ["seed"] = m.Info.Seed, ["last_step"] = m.LastStep, ["final_fd"] = m.FinalFd, ["final_val_ce"] = m.FinalValCe,
            }).ToArray()),
            ["jobs"] = new JsonArray(jobList.ToArray()),
        };
        AtomicFile.WriteAllText(Path.Combine(root, "study.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var md = new StringBuilder();
        md.AppendLine("# Study: CE vs SNCE");
        md.AppendLine();
        md.AppendLine($"Data `{config.Data}`{(config.Limit is { } l ? $" ({l} images of each split, a fixed subset)" : "")}; tokenizers `{config.TokenizerPreset}` ({config.Quantizer}, {config.Metric}), " +
                      $"{config.TokenizerSteps} steps × {config.TokenizerBatch}; generators `{config.Preset}`, {config.Steps} steps × {config.Batch}, lr {config.Lr.ToString(ci)}, " +
                      $"FD-ResNet18 on {config.EvalImages} samples (cfg {config.Cfg.ToString(ci)}, {config.CfgSchedule.Name()}) every {config.EvalEvery} steps; SNCE perplexity {config.Perplexity.ToString(ci)}. " +
                      $"Wall time {elapsed:hh\\:mm\\:ss}. Config: `study-config.json`; every run and job: `study.json`.");
        md.AppendLine();
        md.AppendLine("## Tokenizers (validation split)");
        md.AppendLine();
        md.AppendLine("| K | PSNR (dB) | SSIM | utilization | code perplexity |");
        md.AppendLine("|---:|---:|---:|---:|---:|");
        foreach (var k in config.Codebooks)
        {
            var e = ReadJson(Path.Combine(root, "tokenizers", k.ToString(ci), "eval.json"));
            md.AppendLine($"| {k} | {Num(e, "psnr", "F2")} | {Num(e, "ssim", "F3")} | {Num(e, "utilization", "P1")} | {Num(e, "perplexity", "F0")} |");
        }
        var clf = ReadJson(Path.Combine(root, "classifier.json"));
        md.AppendLine();
        md.AppendLine($"Class accuracy below uses a classifier trained on the real training split; its held-out accuracy is {Num(clf, "held_out_accuracy", "P2")}.");
        md.AppendLine();
        md.AppendLine("## CE vs SNCE");
        md.AppendLine();
        md.AppendLine("Final FD-ResNet18 (lower is better; mean ± std over seeds) and the steps SNCE needs to reach CE's final FD, as a fraction of CE's steps.");
        md.AppendLine();
        md.AppendLine("| objective | K | CE final FD | SNCE final FD | SNCE − CE | SNCE steps to CE's final FD | CE final val CE | SNCE final val CE |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        var ratios = ConvergenceRatio.Of(groups);
        // The headline cells: a run whose label is its loss (not a τ-sweep point such as snce-p4), matched by the typed loss.
        var headline = runs.Where(r => r.Label == r.Loss).Select(r => r.Label).ToHashSet();
        bool Headline(RunGroup g, LossKind kind) => g.Kind == kind && headline.Contains(g.Loss);
        foreach (var ce in groups.Where(g => Headline(g, LossKind.CrossEntropy)))
        {
            var snce = groups.FirstOrDefault(g => Headline(g, LossKind.Snce) && g.Objective == ce.Objective && g.CodebookSize == ce.CodebookSize);
            if (snce is null) continue;
            var diff = ce.FinalFd.Mean is { } a && snce.FinalFd.Mean is { } b ? (b - a).ToString("+0.00;-0.00", ci) : "–";
            var ratio = ratios.FirstOrDefault(r => r.Loss == snce.Loss && r.Baseline == ce.Loss && r.Objective == ce.Objective && r.CodebookSize == ce.CodebookSize);
            var ratioText = ratio is null ? "–" : ratio.Ratio is { } x ? x.ToString("F2", ci) : "not reached";
            md.AppendLine($"| {ce.Objective} | {ce.CodebookSize} | {ce.FinalFd.Format("F2")} | {snce.FinalFd.Format("F2")} | {diff} | {ratioText} | {ce.FinalValCe.Format("F3")} | {snce.FinalValCe.Format("F3")} |");
        }
        md.AppendLine();
        md.AppendLine("Validation CE is the hard cross-entropy of the true tokens; SNCE does not optimize it directly, so a higher value under SNCE is expected and not a loss of quality by itself.");
        var failed = jobs.Select(j => JsonSerializer.SerializeToNode(j)!.AsObject()).Where(j => j["Ok"]?.GetValue<bool>() == false).ToList();
        if (failed.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("## Failed jobs");
            md.AppendLine();
            foreach (var f in failed) md.AppendLine($"- {f["Name"]}: {f["Error"]} (log `{Path.GetRelativePath(root, f["Log"]!.GetValue<string>())}`)");
        }
        var report = Path.Combine(root, "report", RunReport.MarkdownFile);
        if (File.Exists(report))
        {
            md.AppendLine();
            md.AppendLine("## All runs");
            md.AppendLine();
            // Headings one level down and plot paths relative to this file.
            foreach (var line in File.ReadLines(report))
                md.AppendLine(line.StartsWith('#') ? "#" + line : line.Replace("](", "](report/", StringComparison.Ordinal));
        }
        var path = Path.Combine(root, "STUDY.md");
        AtomicFile.WriteAllText(path, md.ToString());
        return path;
    }

    static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException) { return null; }
    }

    static string Num(JsonObject? o, string key, string format)
    {
        var v = o?[key];
        return v is JsonValue jv && jv.TryGetValue<double>(out var d) ? d.ToString(format, CultureInfo.InvariantCulture) : "–";
    }
}
