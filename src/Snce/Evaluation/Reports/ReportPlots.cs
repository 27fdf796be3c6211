using ScottPlot;

namespace Snce.Evaluation.Reports;

/// <summary>Draws the report's PNG plots with ScottPlot (SkiaSharp, headless).</summary>
public static class ReportPlots
{
    const int Width = 900, Height = 560;

    /// <summary>Environment variable naming a .ttf file for the plots' text (for machines without system fonts).</summary>
    public const string FontVariable = Data.FontFiles.Variable;

    /// <summary>
    /// Null when text renders; otherwise why not. A machine without system fonts (seen on the GPU machine) renders
    /// plots with no text at all, so a font file is registered from SNCE_FONT, or found under the usual font folders.
    /// </summary>
    public static string? FontProblem { get; } = EnsureFont();

    static string? EnsureFont()
    {
        var chosen = Data.FontFiles.Chosen;
        if (chosen is not null && !File.Exists(chosen)) return $"{FontVariable}={chosen} does not exist";
        if (chosen is null && SkiaSharp.SKFontManager.Default.FontFamilyCount > 0) return null;
        chosen ??= Data.FontFiles.FindInstalled();
        if (chosen is null) return $"no fonts on this machine, so the plots have no text; set {FontVariable} to a .ttf file";
        Fonts.AddFontFile("SnceFont", chosen);
        Fonts.Default = "SnceFont";
        return null;
    }

    /// <summary>The file name of the steps-to-CE's-best-FD plot.</summary>
    public const string StepsToBestFile = "steps_to_ce_best_fd_vs_codebook.png";

    /// <summary>Writes the plots into <paramref name="outDir"/> and returns their paths.</summary>
    public static IReadOnlyList<string> Draw(IReadOnlyList<RunGroup> groups, string outDir)
    {
        var files = new List<string>();
        var withObjective = groups.Select(g => g.Objective).Distinct().Count() > 1;
        // Curves against steps: one figure per (objective, K) so lines of different codebooks do not mix.
        var panels = groups.GroupBy(g => (g.Objective, g.CodebookSize)).ToList();
        foreach (var panel in panels)
        {
            var suffix = panels.Count == 1 ? "" : "_" + string.Join('_', new[] { panel.Key.Objective, panel.Key.CodebookSize is { } k ? $"K{k}" : null }.Where(s => s is not null));
            var context = string.Join(", ", new[] { panel.Key.Objective, panel.Key.CodebookSize is { } kk ? $"K = {kk}" : null }.Where(s => s is not null));
            var title = context.Length > 0 ? $" ({context})" : "";
            files.AddRange(Curves(panel.ToList(), r => r.Fd, "FD-ResNet18", $"FD-ResNet18 against training steps{title}", Path.Combine(outDir, $"fd_vs_steps{suffix}.png"), logWhenWide: true));
            files.AddRange(Curves(panel.ToList(), r => r.ValCe, "validation CE (nats)", $"Validation cross-entropy against training steps{title}", Path.Combine(outDir, $"val_ce_vs_steps{suffix}.png")));
            files.AddRange(Curves(panel.ToList(), r => r.NnRatio, "NN-distance ratio (generated / validation)",
                $"Memorization: nearest-training-image distance ratio{title}", Path.Combine(outDir, $"nn_ratio_vs_steps{suffix}.png")));
        }
        if (FinalVsCodebook(groups, withObjective, g => g.FinalFd, "FD-ResNet18", Path.Combine(outDir, "final_fd_vs_codebook.png")) is { } f) files.Add(f);
        if (FinalVsCodebook(groups, withObjective, g => g.FinalValCe, "validation CE (nats)", Path.Combine(outDir, "final_val_ce_vs_codebook.png")) is { } v) files.Add(v);
        if (BestFdDifferenceVsCodebook(BaselineComparison.Of(groups), Path.Combine(outDir, "best_fd_difference_vs_codebook.png")) is { } d) files.Add(d);
        if (StepsToBestLayout.Of(ConvergenceRatio.Of(groups, FdTarget.Best)) is { } layout)
            files.Add(StepsToBestVsCodebook(layout, Path.Combine(outDir, StepsToBestFile)));
        return files;
    }

    /// <summary>
    /// One line per group against steps. With <paramref name="logWhenWide"/>, a curve spanning more than a factor of 5
    /// (FD falls from ~900 to ~60 in a run) is drawn on a log10 axis with 1-2-5 ticks, so late differences stay visible.
    /// </summary>
    static IEnumerable<string> Curves(IReadOnlyList<RunGroup> groups, Func<RunMetrics, IReadOnlyList<MetricPoint>> series, string yLabel, string title, string path,
        bool logWhenWide = false)
    {
        var plot = new Plot();
        var drawn = 0;
        var all = groups.SelectMany(g => g.MeanCurve(series)).Select(p => p.Value.Mean!.Value).ToList();
        var log = logWhenWide && all.Count > 0 && all.Min() > 0 && all.Max() / all.Min() > 5;
        Func<double, double> y = log ? Math.Log10 : v => v;
        for (var i = 0; i < groups.Count; i++)
        {
            var curve = groups[i].MeanCurve(series);
            if (curve.Count == 0) continue;
            var color = Palette(i);
            var xs = curve.Select(p => (double)p.Step).ToArray();
            var means = curve.Select(p => p.Value.Mean!.Value).ToArray();
            var ys = means.Select(y).ToArray();
            if (groups[i].Runs.Count > 1 && curve.Count > 1)
            {
                var sd = curve.Select(p => p.Value.Std ?? 0).ToArray();
                var lower = means.Zip(sd, (m, s) => log ? y(Math.Max(m - s, m / 10)) : m - s).ToArray();
                var band = plot.Add.FillY(xs, lower, means.Zip(sd, (m, s) => y(m + s)).ToArray());
                band.FillColor = color.WithAlpha(0.18);
                band.LineWidth = 0;
            }
            var line = plot.Add.Scatter(xs, ys);
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = curve.Count <= 30 ? 5 : 0;
            var seeds = groups[i].Runs.Count;
            line.LegendText = $"{groups[i].Loss}{(seeds > 1 ? $" (mean ± std, {seeds} seeds)" : "")}";
            drawn++;
        }
        if (drawn == 0) yield break;
        if (log)
        {
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            for (var decade = Math.Pow(10, Math.Floor(Math.Log10(all.Min()))); decade <= all.Max() * 10; decade *= 10)
                foreach (var m in new[] { 1, 2, 5 })
                    if (m * decade >= all.Min() / 2 && m * decade <= all.Max() * 2)
                        ticks.AddMajor(Math.Log10(m * decade), (m * decade).ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
            plot.Axes.Left.TickGenerator = ticks;
            yLabel += " (log scale)";
        }
        Style(plot, title, "training step", yLabel);
        plot.SavePng(path, Width, Height);
        yield return path;
    }

    static string? FinalVsCodebook(IReadOnlyList<RunGroup> groups, bool withObjective, Func<RunGroup, Summary> final, string what, string path)
    {
        var lines = groups.Where(g => g.CodebookSize is > 0 && final(g).Mean is not null)
            .GroupBy(g => (g.Objective, g.Loss)).ToList();
        if (lines.Count == 0) return null;
        var plot = new Plot();
        var ks = new SortedSet<int>();
        for (var i = 0; i < lines.Count; i++)
        {
            var points = lines[i].OrderBy(g => g.CodebookSize).ToList();
            var xs = points.Select(g => Math.Log2(g.CodebookSize!.Value)).ToArray();
            var ys = points.Select(g => final(g).Mean!.Value).ToArray();
            foreach (var g in points) ks.Add(g.CodebookSize!.Value);
            var color = Palette(i);
            if (points.Any(g => final(g).Std is not null))
            {
                var bars = plot.Add.ErrorBar(xs, ys, points.Select(g => final(g).Std ?? 0).ToArray());
                bars.Color = color;
            }
            var line = plot.Add.Scatter(xs, ys);
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LegendText = withObjective ? $"{lines[i].Key.Objective} {lines[i].Key.Loss}" : lines[i].Key.Loss;
        }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var k in ks) ticks.AddMajor(Math.Log2(k), k.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        plot.Axes.Bottom.TickGenerator = ticks;
        Style(plot, $"Final {what} against codebook size", "codebook size K (log2 scale)", $"final {what}");
        if (ks.Count == 1) plot.Axes.SetLimitsX(Math.Log2(ks.Min) - 1, Math.Log2(ks.Min) + 1);
        else plot.Axes.SetLimitsX(Math.Log2(ks.Min) - 0.5, Math.Log2(ks.Max) + 0.5);
        plot.SavePng(path, Width, Height);
        return path;
    }

    /// <summary>
    /// The paired best-FD difference (loss − CE, <see cref="PairedMetric.BestFd"/>) against log2 K: one line per (objective,
    /// loss, baseline), mean over seeds with ±1 sample-std error bars, and a line at 0 (below it the loss has the lower FD).
    /// </summary>
    static string? BestFdDifferenceVsCodebook(IReadOnlyList<BaselineComparison> comparisons, string path)
    {
        var lines = comparisons.Where(c => c.Baseline.CodebookSize is > 0)
            .Select(c => (c, d: Summary.Of(c.Differences(PairedMetric.BestFd.Value).Select(x => (double?)x.Difference))))
            .Where(x => x.d.Mean is not null)
            .GroupBy(x => (x.c.Baseline.Objective, x.c.Compared.Loss, Baseline: x.c.Baseline.Loss)).ToList();
        if (lines.Count == 0) return null;
        var plot = new Plot();
        var ks = new SortedSet<int>();
        for (var i = 0; i < lines.Count; i++)
        {
            var points = lines[i].OrderBy(x => x.c.Baseline.CodebookSize).ToList();
            var xs = points.Select(x => Math.Log2(x.c.Baseline.CodebookSize!.Value)).ToArray();
            var ys = points.Select(x => x.d.Mean!.Value).ToArray();
            foreach (var x in points) ks.Add(x.c.Baseline.CodebookSize!.Value);
            var color = Palette(i);
            if (points.Any(x => x.d.Std is not null))
                plot.Add.ErrorBar(xs, ys, points.Select(x => x.d.Std ?? 0).ToArray()).Color = color;
            var line = plot.Add.Scatter(xs, ys);
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = 7;
            var seeds = points.Max(x => x.d.Count);
            line.LegendText = $"{lines[i].Key.Objective} {lines[i].Key.Loss} − {lines[i].Key.Baseline}{(seeds > 1 ? " (mean ± std over seeds)" : "")}";
        }
        var zero = plot.Add.HorizontalLine(0);
        zero.Color = Colors.Gray;
        zero.LinePattern = LinePattern.Dashed;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var k in ks) ticks.AddMajor(Math.Log2(k), k.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        plot.Axes.Bottom.TickGenerator = ticks;
        Style(plot, "Best FD-ResNet18 difference (loss − CE, paired by seed) against codebook size", "codebook size K (log2 scale)", "best FD: loss − CE");
        if (ks.Count == 1) plot.Axes.SetLimitsX(Math.Log2(ks.Min) - 1, Math.Log2(ks.Min) + 1);
        else plot.Axes.SetLimitsX(Math.Log2(ks.Min) - 0.5, Math.Log2(ks.Max) + 0.5);
        plot.SavePng(path, Width, Height);
        return path;
    }

    /// <summary>
    /// Steps to reach CE's best FD over CE's steps against log2 K (<see cref="StepsToBestLayout"/>): per series the paired
    /// seeds as open circles and their mean (over the seeds that got there, ±1 sample std) as a line; a dashed line at 1
    /// (as many steps as CE); runs that never got there on the "never" row (a cell none of whose seeds got there: a cross).
    /// </summary>
    static string StepsToBestVsCodebook(StepsToBestLayout layout, string path)
    {
        var plot = new Plot();
        for (var i = 0; i < layout.Series.Count; i++)
        {
            var s = layout.Series[i];
            var color = Palette(i);
            var seeds = plot.Add.Scatter(s.Seeds.Select(m => m.X).ToArray(), s.Seeds.Select(m => m.Y).ToArray());
            seeds.Color = color;
            seeds.LineWidth = 0;
            seeds.MarkerShape = MarkerShape.OpenCircle;
            seeds.MarkerSize = 9;
            var reached = s.Means.Where(m => m.Ratio is not null).ToArray();
            if (reached.Any(m => m.Std is not null))
                plot.Add.ErrorBar(reached.Select(m => m.X).ToArray(), reached.Select(m => m.Y).ToArray(), reached.Select(m => m.Std ?? 0).ToArray()).Color = color;
            // The mean's line joins neighbouring K only; a cell that never got there is a cross on the "never" row, not a point of the line.
            var legend = $"{s.Label}: {(s.Means.Max(m => m.Paired) > 1 ? "mean of the seeds that got there (± std); circles: seeds" : "one seed")}";
            for (var start = 0; start < s.Means.Count;)
            {
                var end = start;
                while (end + 1 < s.Means.Count && (s.Means[end + 1].Ratio is null) == (s.Means[start].Ratio is null)) end++;
                var run = s.Means.Skip(start).Take(end - start + 1).ToArray();
                var mark = plot.Add.Scatter(run.Select(m => m.X).ToArray(), run.Select(m => m.Y).ToArray());
                mark.Color = color;
                mark.MarkerSize = run[0].Ratio is null ? 11 : 7;
                mark.MarkerShape = run[0].Ratio is null ? MarkerShape.Eks : MarkerShape.FilledCircle;
                mark.LineWidth = run[0].Ratio is null ? 0 : 2;
                if (start == 0) mark.LegendText = legend;
                start = end + 1;
            }
        }
        var one = plot.Add.HorizontalLine(1);
        one.Color = Colors.Gray;
        one.LinePattern = LinePattern.Dashed;
        var yTicks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var (y, label) in layout.Ticks) yTicks.AddMajor(y, label);
        plot.Axes.Left.TickGenerator = yTicks;
        var xTicks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var k in layout.Codebooks) xTicks.AddMajor(Math.Log2(k), k.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        plot.Axes.Bottom.TickGenerator = xTicks;
        Style(plot, "Steps to reach CE's best FD-ResNet18, over CE's steps, against codebook size", "codebook size K (log2 scale)",
            "steps to CE's best FD / CE's steps");
        plot.Axes.SetLimitsY(0, layout.NeverY + (layout.Ticks[1].Y - layout.Ticks[0].Y));
        var (lo, hi) = (Math.Log2(layout.Codebooks[0]), Math.Log2(layout.Codebooks[^1]));
        if (lo == hi) plot.Axes.SetLimitsX(lo - 1, hi + 1);
        else plot.Axes.SetLimitsX(lo - 0.5, hi + 0.5);
        plot.SavePng(path, Width, Height);
        return path;
    }

    static void Style(Plot plot, string title, string x, string y)
    {
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        plot.ShowLegend(Edge.Bottom); // outside the data area: never covers a point
    }

    static Color Palette(int i) => new ScottPlot.Palettes.Category10().GetColor(i);
}
