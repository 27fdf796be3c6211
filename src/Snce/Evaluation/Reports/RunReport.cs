using System.Globalization;
using System.Text;

namespace Snce.Evaluation.Reports;

/// <summary>What <see cref="RunReport.Write"/> produced.</summary>
public sealed record ReportFiles(string Markdown, IReadOnlyList<string> Plots);

/// <summary>
/// A report over training runs: PNG plots (FD-ResNet18 and validation CE against steps, one line per loss with a
/// ±1 std band over seeds; final FD, the paired best-FD difference and the steps to CE's best FD against codebook size on a
/// log2 axis) and a markdown table (final metrics per
/// run and per group as mean ± std over seeds; the steps each loss needs to reach CE's final FD, as a ratio; memorization
/// at the last and the best-FD evaluation; text alignment (R@1, R@5, cosine) of text-to-image runs; the final evaluations at a
/// larger n, where the runs have them).
/// </summary>
public static class RunReport
{
    /// <summary>The report's markdown file name inside the output folder.</summary>
    public const string MarkdownFile = "report.md";

    /// <summary>Reads the run folders <paramref name="runDirs"/> and writes the plots and <see cref="MarkdownFile"/> into <paramref name="outDir"/> (created if missing).</summary>
    public static ReportFiles Write(IReadOnlyList<string> runDirs, string outDir)

    {
        if (runDirs.Count == 0) throw new ArgumentException("no run folders given");
        var runs = runDirs.Select(RunReader.Read).ToList();
        var groups = RunGroup.Of(runs);
        Directory.CreateDirectory(outDir);
        var plots = ReportPlots.Draw(groups, outDir);
        var markdown = Path.Combine(outDir, MarkdownFile);
        AtomicFile.WriteAllText(markdown, Markdown(runs, groups, plots, outDir));
        return new ReportFiles(markdown, plots);
    }

    /// <summary>The markdown report text.</summary>
    public static string Markdown(IReadOnlyList<RunMetrics> runs, IReadOnlyList<RunGroup> groups, IReadOnlyList<string> plots, string outDir)
    {
        var ci = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# Training runs");
        md.AppendLine();
        md.AppendLine("FD = FD-ResNet18: Fréchet distance in the 512-d pooled features of an ImageNet ResNet-18 (not Inception FID); lower is better. " +
                      "Val CE = hard cross-entropy of the true tokens on held-out images (nats). Mean ± sample std over seeds.");
        md.AppendLine();
        md.AppendLine("## Per group");
        md.AppendLine();
        md.AppendLine("| objective | loss | K | seeds | final FD-ResNet18 | final val CE |");
        md.AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var g in groups)
            md.AppendLine($"| {g.Objective ?? "–"} | {g.Loss} | {Int(g.CodebookSize)} | {g.Runs.Count} | {g.FinalFd.Format("F3")} | {g.FinalValCe.Format("F4")} |");
        md.AppendLine();
        StepsToReach(md, ConvergenceRatio.Of(groups), "final",
            "First step at which the loss's seed-mean FD is at or below CE's seed-mean final FD, over CE's steps (< 1: faster than CE).",
            "| objective | K | loss | CE final FD | CE steps | step reached | ratio |");
        StepsToReach(md, ConvergenceRatio.Of(groups, FdTarget.Best), "best",
            "First step at which the loss's seed-mean FD is at or below the lowest point of CE's seed-mean FD curve, over the step at which " +
            "CE's curve had it (< 1: faster than CE). Per seed: seed s of the loss against seed s of CE and that run's own best FD, " +
            "mean ± sample std over the seeds that got there (reached / paired seeds).",
            "| objective | K | loss | CE best FD | CE step | step reached | ratio | per seed, paired |", perSeed: true);
        var comparisons = BaselineComparison.Of(groups);
        PairedTables(md, comparisons);
        md.AppendLine("## Per run");
        md.AppendLine();
        md.AppendLine("| run | objective | loss | K | seed | last step | final FD-ResNet18 | final val CE | precision | recall | class acc. |");
        md.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in runs)
            md.AppendLine($"| {r.Info.Name} | {r.Info.Objective ?? "–"} | {r.Info.Loss} | {Int(r.Info.CodebookSize)} | {(r.Info.Seed is { } s ? s.ToString(ci) : "–")} | " +
                          $"{(r.LastStep is { } l ? l.ToString(ci) : "–")} | {Num(r.FinalFd, "F3")} | {Num(r.FinalValCe, "F4")} | " +
                          $"{Last(r.Precision)} | {Last(r.Recall)} | {Last(r.ClassAccuracy)} |");
        if (runs.Any(r => r.FdTrain.Count + r.NnRatio.Count + r.CopyFraction.Count > 0))
        {
            md.AppendLine();
            md.AppendLine("## Memorization");
            md.AppendLine();
            md.AppendLine("At the last evaluation and at the best-FD one. FD vs train: FD against the training split (next to FD against validation; " +
                          "a model that copies training images scores better against train). NN ratio: mean distance from each generated image to its " +
                          "nearest training image over the same for validation images, in ResNet-18 features (below 1: samples sit closer to training " +
                          "images than unseen real images do). Copies: generated token sequences identical to a training sequence.");
            md.AppendLine();
            md.AppendLine("| run | step | FD (val) | FD vs train | NN ratio | copies | best-FD step | FD (val) | FD vs train | NN ratio | copies |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in runs)
            {
                var last = r.Fd.Count > 0 ? r.Fd[^1].Step : (long?)null;
                var best = r.BestFd?.Step;
                md.AppendLine($"| {r.Info.Name} | {Step(last)} | {At(r.Fd, last, "F2")} | {At(r.FdTrain, last, "F2")} | {At(r.NnRatio, last, "F3")} | {At(r.CopyFraction, last, "P1")} | " +
                              $"{Step(best)} | {At(r.Fd, best, "F2")} | {At(r.FdTrain, best, "F2")} | {At(r.NnRatio, best, "F3")} | {At(r.CopyFraction, best, "P1")} |");
            }
        }
        if (runs.Any(r => r.TextR1.Count > 0))
        {
            md.AppendLine();
            md.AppendLine("## Text alignment");
            md.AppendLine();
            md.AppendLine("Text-to-image runs at their last text evaluation ('snce eval --prompts ... --log-to'; the first prompt set, held-out phrasings " +
                          "for --prompts held-out): R@1 / R@5 of each image's own prompt among the candidates and the mean matched cosine in the " +
                          "text-alignment evaluator, next to R@1 of the real images of the same prompts (the evaluator's ceiling), and FD-ResNet18 " +
                          "against those real images (few images: biased high).");
            md.AppendLine();
            md.AppendLine("| run | step | R@1 | R@5 | cosine | real R@1 | FD-ResNet18 |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var r in runs.Where(r => r.TextR1.Count > 0))
            {
                var at = r.TextR1[^1].Step;
                md.AppendLine($"| {r.Info.Name} | {Step(at)} | {At(r.TextR1, at, "P1")} | {At(r.TextR5, at, "P1")} | {At(r.TextCosine, at, "F3")} | " +
                              $"{At(r.TextR1Real, at, "P1")} | {At(r.Fd, at, "F2")} |");
            }
        }
        if (runs.Any(r => r.Finals.Count > 0))
        {
            md.AppendLine();
            md.AppendLine("## Final evaluations");
            md.AppendLine();
            md.AppendLine("The last checkpoint and the one kept by --keep-best, each scored once more on more samples than the curves use (n below; " +
                          "FD is biased upwards at small n, so compare these only with each other).");
            md.AppendLine();
            md.AppendLine("| run | checkpoint | step | n | FD-ResNet18 | FD vs train | precision | recall | class acc. | NN ratio | copies |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in runs)
                foreach (var f in r.Finals)
                    md.AppendLine($"| {r.Info.Name} | {f.Which} | {Step(f.Step)} | {(f.N is { } n ? n.ToString(ci) : "–")} | {Num(f.Fd, "F2")} | {Num(f.FdTrain, "F2")} | " +
                                  $"{Num(f.Precision, "F3")} | {Num(f.Recall, "F3")} | {Num(f.ClassAccuracy, "F3")} | {Num(f.NnRatio, "F3")} | {Num(f.CopyFraction, "P1")} |");
        }
        if (plots.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("## Plots");
            md.AppendLine();
            if (ReportPlots.FontProblem is { } problem) md.AppendLine($"Note: {problem}.").AppendLine();
            foreach (var p in plots) md.AppendLine($"![{Path.GetFileNameWithoutExtension(p)}]({Path.GetRelativePath(outDir, p).Replace('\\', '/')})");
        }
        md.AppendLine();
        md.AppendLine("Runs: " + string.Join(", ", runs.Select(r => $"`{r.Info.Dir}`")));
        return md.ToString();

        // The steps-to-CE's-FD table for one target (final or best), with the per-seed column for the best one; nothing without ratios.
        static void StepsToReach(StringBuilder md, IReadOnlyList<ConvergenceRatio> ratios, string target, string intro, string header, bool perSeed = false)
        {
            if (ratios.Count == 0) return;
            var ci = CultureInfo.InvariantCulture;
            md.AppendLine($"## Steps to reach CE's {target} FD-ResNet18");
            md.AppendLine();
            md.AppendLine(intro);
            md.AppendLine();
            md.AppendLine(header);
            md.AppendLine("|---|---:|---|---:|---:|---:|---:|" + (perSeed ? "---:|" : ""));
            foreach (var r in ratios)
                md.AppendLine($"| {r.Objective ?? "–"} | {Int(r.CodebookSize)} | {r.Describe()} | {r.CeFd.ToString("F3", ci)} | {r.CeStep} | " +
                              $"{(r.Step is { } s ? s.ToString(ci) : "not reached")} | {(r.Ratio is { } x ? x.ToString("F2", ci) : "–")} |" +
                              (perSeed ? $" {SeedRatios(r)} |" : ""));
            md.AppendLine();
        }
        static string SeedRatios(ConvergenceRatio r)
        {
            var reached = r.SeedRatioSummary;
            return r.SeedRatios.Count switch
            {
                0 => "–",
                1 => reached.Count == 1 ? "n = 1: no spread" : "not reached (0/1)",
                var n => reached.Count == 0 ? $"not reached (0/{n})" : $"{reached.Format("F2")} ({reached.Count}/{n})",
            };
        }
        static string Int(int? v) => v is { } x ? x.ToString(CultureInfo.InvariantCulture) : "–";
        static string Num(double? v, string f) => v is { } x ? x.ToString(f, CultureInfo.InvariantCulture) : "–";
        static string Last(IReadOnlyList<MetricPoint> s) => s.Count > 0 ? s[^1].Value.ToString("F3", CultureInfo.InvariantCulture) : "–";
        static string Step(long? step) => step is { } x ? x.ToString(CultureInfo.InvariantCulture) : "–";
        static string At(IReadOnlyList<MetricPoint> s, long? step, string f) =>
            step is { } at && s.Where(p => p.Step == at).Select(p => (double?)p.Value).FirstOrDefault() is { } v ? v.ToString(f, CultureInfo.InvariantCulture) : "–";
    }

    /// <summary>
    /// The paired-by-seed tables: best and final FD and final val CE differences per (objective, K, loss), the final evaluations'
    /// FD differences (last and best checkpoint), their trend against log2 K, and the memorization differences at the last evaluation.
    /// </summary>
    static void PairedTables(StringBuilder md, IReadOnlyList<BaselineComparison> comparisons)
    {
        var fd = comparisons.Select(c => (c, Best: c.Differences(PairedMetric.BestFd.Value))).Where(x => x.Best.Count > 0).ToList();
        if (fd.Count > 0)
        {
            md.AppendLine("## Best-FD difference");
            md.AppendLine();
            md.AppendLine("Each run's best FD is the minimum over its evaluations. Differences are loss − CE taken seed by seed (seed s of the loss " +
                          "minus seed s of CE), mean ± sample std over the n paired seeds; below 0 the loss has the lower FD / val CE. " +
                          "CE / loss best FD: the mean of those runs' own bests (the table above takes the minimum of the seed-mean curve instead).");
            md.AppendLine();
            md.AppendLine("| objective | K | loss | n | CE best FD | loss best FD | best FD: loss − CE | final FD: loss − CE | final val CE: loss − CE |");
            md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|");
            foreach (var (c, best) in fd)
                md.AppendLine($"| {c.Baseline.Objective ?? "–"} | {Int(c.Baseline.CodebookSize)} | {c.Describe()} | {best.Count} | " +
                              $"{PairedMetric.BestFd.Format(best.Average(d => d.Baseline))} | {PairedMetric.BestFd.Format(best.Average(d => d.Compared))} | " +
                              $"{PairedMetric.BestFd.FormatDifferences(best)} | {PairedMetric.FinalFd.FormatDifferences(c.Differences(PairedMetric.FinalFd.Value))} | " +
                              $"{PairedMetric.FinalValCe.FormatDifferences(c.Differences(PairedMetric.FinalValCe.Value))} |");
            md.AppendLine();
        }
        var finals = comparisons.Select(c => (c, Last: c.Differences(PairedMetric.LastCheckpointFd.Value), Best: c.Differences(PairedMetric.BestCheckpointFd.Value)))
            .Where(x => x.Last.Count + x.Best.Count > 0).ToList();
        if (finals.Count > 0)
        {
            md.AppendLine("## Final-evaluation difference");
            md.AppendLine();
            md.AppendLine("The same pairing for the final evaluations (final-last.json / final-best.json: the last checkpoint and the one kept by " +
                          "--keep-best, scored on more samples than the curves, so less noisy). n: the sample counts of the paired evaluations " +
                          "(FD is biased upwards at small n: a row mixing counts compares unlike numbers).");
            md.AppendLine();
            md.AppendLine("| objective | K | loss | pairs | n | CE last ckpt | loss last ckpt | last ckpt: loss − CE | CE best ckpt | loss best ckpt | best ckpt: loss − CE |");
            md.AppendLine("|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|");
            foreach (var (c, last, best) in finals)
            {
                var counts = string.Join(", ", c.SeedPairs().SelectMany(p => new[] { p.Baseline, p.Compared }).SelectMany(r => r.Finals).Select(f => f.N)
                    .OfType<int>().Distinct().Order().Select(n => n.ToString(CultureInfo.InvariantCulture)));
                md.AppendLine($"| {c.Baseline.Objective ?? "–"} | {Int(c.Baseline.CodebookSize)} | {c.Describe()} | {Math.Max(last.Count, best.Count)} | " +
                              $"{(counts.Length > 0 ? counts : "–")} | {Arms(last, PairedMetric.LastCheckpointFd)} | {Arms(best, PairedMetric.BestCheckpointFd)} |");
            }
            md.AppendLine();
        }
        var trends = PairedMetric.Trended.SelectMany(m => KTrend.Of(comparisons, m)).OrderBy(t => t.Objective, StringComparer.Ordinal)
            .ThenBy(t => t.Loss, StringComparer.Ordinal).ThenBy(t => t.Baseline, StringComparer.Ordinal).ToList();
        if (trends.Count > 0)
        {
            md.AppendLine("## Does the gap grow with K?");
            md.AppendLine();
            md.AppendLine("Ordinary least-squares line of the paired difference (loss − CE; one point per seed and K, as in the tables above) against " +
                          "log2 K: the slope is the change of the difference per doubling of K, with its standard error and 95 % interval " +
                          "(t distribution with n − 2 degrees of freedom). An interval that excludes 0 says the gap changes with K; one that " +
                          $"contains 0 says these runs cannot tell. A fit needs ≥ {LinearFit.MinPoints} points over ≥ 2 values of K.");
            md.AppendLine();
            md.AppendLine("| objective | loss | difference | points | K values | slope per doubling | SE | 95 % interval |");
            md.AppendLine("|---|---|---|---:|---:|---:|---:|---|");
            // Differences that cannot be fitted for the same reason share one row, so a single-K report stays short.
            foreach (var row in trends.GroupBy(t => (t.Objective, t.Loss, t.Baseline, Fit: t.Fit is null ? "" : t.Metric.Name, t.Points.Count, t.Codebooks)))
            {
                var t = row.First();
                var m = t.Metric;
                var fit = t.Fit is { } f
                    ? $"{m.FormatSigned(f.Slope)} | {m.Format(f.SlopeStdError)} | [{m.FormatSigned(f.SlopeInterval95.Lower)}, {m.FormatSigned(f.SlopeInterval95.Upper)}]"
                    : $"{(t.Points.Count < LinearFit.MinPoints ? $"needs ≥ {LinearFit.MinPoints} points" : "needs ≥ 2 values of K")} | – | –";
                md.AppendLine($"| {t.Objective ?? "–"} | {BaselineComparison.Describe(t.Loss, t.Baseline)} | {string.Join(", ", row.Select(x => x.Metric.Name))} | " +
                              $"{t.Points.Count} | {t.Codebooks} | {fit} |");
            }
            md.AppendLine();
        }
        var memorization = comparisons.Select(c => (c, Nn: c.Differences(PairedMetric.NnRatio.Value), Copies: c.Differences(PairedMetric.CopiesPercent.Value)))
            .Where(x => x.Nn.Count + x.Copies.Count > 0).ToList();
        if (memorization.Count > 0)
        {
            md.AppendLine("## Memorization difference");
            md.AppendLine();
            md.AppendLine("NN ratio and copies (see Memorization below) at each run's last evaluation that measured them, loss − CE paired by seed, " +
                          "mean ± sample std over the n paired seeds (NN ratio below 0 / copies above 0: the loss's samples sit closer to the training set). " +
                          "Copies in percent, their difference in percentage points.");
            md.AppendLine();
            md.AppendLine("| objective | K | loss | n | CE NN ratio | loss NN ratio | NN ratio: loss − CE | CE copies % | loss copies % | copies: loss − CE (pp) |");
            md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var (c, nn, copies) in memorization)
                md.AppendLine($"| {c.Baseline.Objective ?? "–"} | {Int(c.Baseline.CodebookSize)} | {c.Describe()} | {Math.Max(nn.Count, copies.Count)} | " +
                              $"{Arms(nn, PairedMetric.NnRatio)} | {Arms(copies, PairedMetric.CopiesPercent)} |");
            md.AppendLine();
        }

        static string Int(int? v) => v is { } x ? x.ToString(CultureInfo.InvariantCulture) : "–";
        // "CE mean | loss mean | loss − CE" of one paired metric: three table cells.
        static string Arms(IReadOnlyList<SeedDifference> d, PairedMetric m) =>
            $"{Mean(d, x => x.Baseline, m)} | {Mean(d, x => x.Compared, m)} | {m.FormatDifferences(d)}";
        static string Mean(IReadOnlyList<SeedDifference> d, Func<SeedDifference, double> arm, PairedMetric m) => d.Count > 0 ? m.Format(d.Average(arm)) : "–";
    }
}
