using System.Globalization;
using System.Text;

namespace Snce.Evaluation.Reports;

/// <summary>What <see cref="RunReport.Write"/> produced.</summary>
public sealed record ReportFiles(string Markdown, IReadOnlyList<string> Plots);

/// <summary>
/// A report over training runs: PNG plots (FD-ResNet18 and validation CE against steps, one line per loss with a
/// ±1 std band over seeds; final FD against codebook size on a log2 axis) and a markdown table (final metrics per
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
        var ratios = ConvergenceRatio.Of(groups);
        if (ratios.Count > 0)
        {
            md.AppendLine("## Steps to reach CE's final FD-ResNet18");
            md.AppendLine();
            md.AppendLine("First step at which the loss's seed-mean FD is at or below CE's seed-mean final FD, over CE's steps (< 1: faster than CE).");
            md.AppendLine();
            md.AppendLine("| objective | K | loss | CE final FD | CE steps | step reached | ratio |");
            md.AppendLine("|---|---:|---|---:|---:|---:|---:|");
            foreach (var r in ratios)
                md.AppendLine($"| {r.Objective ?? "–"} | {Int(r.CodebookSize)} | {r.Describe()} | {r.CeFinalFd.ToString("F3", ci)} | {r.CeSteps} | " +
                              $"{(r.Step is { } s ? s.ToString(ci) : "not reached")} | {(r.Ratio is { } x ? x.ToString("F2", ci) : "–")} |");
            md.AppendLine();
        }
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

        static string Int(int? v) => v is { } x ? x.ToString(CultureInfo.InvariantCulture) : "–";
        static string Num(double? v, string f) => v is { } x ? x.ToString(f, CultureInfo.InvariantCulture) : "–";
        static string Last(IReadOnlyList<MetricPoint> s) => s.Count > 0 ? s[^1].Value.ToString("F3", CultureInfo.InvariantCulture) : "–";
        static string Step(long? step) => step is { } x ? x.ToString(CultureInfo.InvariantCulture) : "–";
        static string At(IReadOnlyList<MetricPoint> s, long? step, string f) =>
            step is { } at && s.Where(p => p.Step == at).Select(p => (double?)p.Value).FirstOrDefault() is { } v ? v.ToString(f, CultureInfo.InvariantCulture) : "–";
    }
}
