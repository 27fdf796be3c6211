using System.Globalization;

namespace Snce.Evaluation.Reports;

/// <summary>One marker of the steps-to-CE's-best plot: <see cref="Ratio"/> null means "never reached", drawn on the "never" row.</summary>
/// <param name="CodebookSize">K of the cell.</param>
/// <param name="X">Where it is drawn: log2 K, moved a little sideways so series and seeds at one K do not hide each other.</param>
/// <param name="Y">Where it is drawn: the ratio, or <see cref="StepsToBestLayout.NeverY"/>.</param>
/// <param name="Ratio">The ratio itself (the table's number), or null.</param>
/// <param name="Std">For a mean: the sample std over the seeds that reached CE's best (null for one seed or none).</param>
/// <param name="Reached">For a mean: how many seeds reached it; for a seed: 1 or 0.</param>
/// <param name="Paired">For a mean: how many seeds were paired; for a seed: 1.</param>
internal readonly record struct RatioMark(int CodebookSize, double X, double Y, double? Ratio, double? Std, int Reached, int Paired);

/// <summary>One series of the plot: a (objective, loss, baseline) over K; per-seed marks and one mean mark per K.</summary>
internal sealed record RatioSeries(string? Objective, string Loss, string Baseline, IReadOnlyList<RatioMark> Seeds, IReadOnlyList<RatioMark> Means)
{
    /// <summary>The legend's name of the series.</summary>
    public string Label => $"{Objective} {BaselineComparison.Describe(Loss, Baseline)}".Trim();
}

/// <summary>
/// What the "steps to reach CE's best FD against K" plot draws, computed from the same <see cref="ConvergenceRatio"/>s
/// (<see cref="FdTarget.Best"/>) that the report's table prints: per seed (paired with its CE seed) the ratio of steps,
/// and per cell the mean over the seeds that reached CE's best (the table's "per seed, paired" column). A seed or a cell
/// that never reached it sits on a separate row above the numbers whose tick reads "never", so it cannot be read as a ratio.
/// </summary>
/// <param name="Series">One per (objective, loss, baseline), in the ratios' order.</param>
/// <param name="NeverY">The y of the "never" row, above every ratio and above 1.</param>
/// <param name="Ticks">The y axis ticks: numbers up to the largest ratio (or 1), then "never" at <paramref name="NeverY"/>.</param>
/// <param name="Codebooks">The codebook sizes on the x axis, ascending.</param>
internal sealed record StepsToBestLayout(IReadOnlyList<RatioSeries> Series, double NeverY, IReadOnlyList<(double Y, string Label)> Ticks, IReadOnlyList<int> Codebooks)
{
    /// <summary>The tick label of the row of runs that never reached CE's best FD.</summary>
    public const string Never = "never";

    const double SeriesSpread = 0.08, SeedSpread = 0.03; // sideways offsets, in doublings of K

    /// <summary>The layout of the cells of <paramref name="ratios"/> with a known K and at least one paired seed; null when there are none.</summary>
    public static StepsToBestLayout? Of(IReadOnlyList<ConvergenceRatio> ratios)
    {
        var lines = ratios.Where(r => r.CodebookSize is > 0 && r.SeedRatios.Count > 0)
            .GroupBy(r => (r.Objective, r.Loss, r.Baseline)).ToList();
        if (lines.Count == 0) return null;
        var finite = lines.SelectMany(l => l).SelectMany(r => r.SeedRatios).Where(x => x is not null).Select(x => x!.Value).ToList();
        var top = Math.Max(1, finite.Count > 0 ? finite.Max() : 0);
        var step = top <= 1.5 ? 0.25 : top <= 3 ? 0.5 : Math.Ceiling(top / 6);
        var ticks = new List<(double, string)>();
        for (var n = 0; n * step <= top + 1e-9; n++) ticks.Add((n * step, (n * step).ToString("0.##", CultureInfo.InvariantCulture)));
        var neverY = top + 1.5 * step;
        ticks.Add((neverY, Never));

        var series = new List<RatioSeries>();
        for (var i = 0; i < lines.Count; i++)
        {
            var offset = (i - (lines.Count - 1) / 2.0) * SeriesSpread;
            var seeds = new List<RatioMark>();
            var means = new List<RatioMark>();
            foreach (var r in lines[i].OrderBy(r => r.CodebookSize))
            {
                var k = r.CodebookSize!.Value;
                var x = Math.Log2(k) + offset;
                for (var j = 0; j < r.SeedRatios.Count; j++)
                {
                    var v = r.SeedRatios[j];
                    seeds.Add(new RatioMark(k, x + (j - (r.SeedRatios.Count - 1) / 2.0) * SeedSpread, v ?? neverY, v, null, v is null ? 0 : 1, 1));
                }
                var s = r.SeedRatioSummary;
                means.Add(new RatioMark(k, x, s.Mean ?? neverY, s.Mean, s.Std, s.Count, r.SeedRatios.Count));
            }
            series.Add(new RatioSeries(lines[i].Key.Objective, lines[i].Key.Loss, lines[i].Key.Baseline, seeds, means));
        }
        var codebooks = lines.SelectMany(l => l).Select(r => r.CodebookSize!.Value).Distinct().Order().ToList();
        return new StepsToBestLayout(series, neverY, ticks, codebooks);
    }
}
