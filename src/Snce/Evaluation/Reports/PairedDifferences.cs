namespace Snce.Evaluation.Reports;

/// <summary>A per-run number the report compares between a loss and its CE baseline, seed by seed.</summary>
/// <param name="Name">How the report names it.</param>
/// <param name="Decimals">Decimals it is printed with.</param>
/// <param name="Value">The run's value, or null when the run has none.</param>
public sealed record PairedMetric(string Name, int Decimals, Func<RunMetrics, double?> Value)
{
    /// <summary>The lowest FD-ResNet18 over the run's evaluations.</summary>
    public static readonly PairedMetric BestFd = new("best FD", 2, r => r.BestFd?.Value);
    /// <summary>The FD-ResNet18 of the run's last evaluation.</summary>
    public static readonly PairedMetric FinalFd = new("final FD", 2, r => r.FinalFd);
    /// <summary>The FD-ResNet18 of the last checkpoint's final evaluation (final-last.json: more samples than the curves).</summary>
    public static readonly PairedMetric LastCheckpointFd = new("final-eval FD, last ckpt", 2, r => r.Final("last")?.Fd);
    /// <summary>The FD-ResNet18 of the best checkpoint's final evaluation (final-best.json).</summary>
    public static readonly PairedMetric BestCheckpointFd = new("final-eval FD, best ckpt", 2, r => r.Final("best")?.Fd);
    /// <summary>The run's last validation cross-entropy (nats per token).</summary>
    public static readonly PairedMetric FinalValCe = new("final val CE", 4, r => r.FinalValCe);
    /// <summary>The nearest-training-neighbour distance ratio at the run's last evaluation that measured it.</summary>
    public static readonly PairedMetric NnRatio = new("NN ratio (last eval)", 3, r => r.NnRatio.Count > 0 ? r.NnRatio[^1].Value : null);
    /// <summary>Generated sequences identical to a training one at the last evaluation that measured it, in percent.</summary>
    public static readonly PairedMetric CopiesPercent = new("copies % (last eval)", 2, r => r.CopyFraction.Count > 0 ? 100 * r.CopyFraction[^1].Value : null);

    /// <summary>The metrics whose difference the report fits against log2 K, in the report's order.</summary>
    public static IReadOnlyList<PairedMetric> Trended { get; } = [BestFd, FinalFd, LastCheckpointFd, BestCheckpointFd, FinalValCe, NnRatio, CopiesPercent];

    /// <summary>"12.34" at this metric's decimals.</summary>
    public string Format(double v) => v.ToString("F" + Decimals, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>"+1.23", "-0.50": a difference, signed.</summary>
    public string FormatSigned(double v) => (v >= 0 ? "+" : "") + Format(v);

    /// <summary>
    /// The paired differences as the report prints them: "+1.23 ± 0.45" (mean ± sample std over seeds), "-5.00 (n = 1: no spread)",
    /// "–" for none.
    /// </summary>
    public string FormatDifferences(IReadOnlyList<SeedDifference> d)
    {
        var s = Summary.Of(d.Select(x => (double?)x.Difference));
        return s.Mean is not { } m ? "–" : s.Std is { } sd ? $"{FormatSigned(m)} ± {Format(sd)}" : $"{FormatSigned(m)} (n = 1: no spread)";
    }
}

/// <summary>
/// Whether the gap between a loss and its CE baseline changes with the codebook size: an ordinary least-squares line of the
/// paired difference (compared − CE, one point per seed and K) against log2 K, so the slope is the change per doubling of K.
/// </summary>
/// <param name="Objective">The generator kind.</param>
/// <param name="Loss">The compared loss's label.</param>
/// <param name="Baseline">The CE baseline's label.</param>
/// <param name="Metric">What is differenced.</param>
/// <param name="Points">(log2 K, difference) of every seed pair at every K.</param>
/// <param name="Fit">The line, or null with fewer than <see cref="LinearFit.MinPoints"/> points or a single K.</param>
public sealed record KTrend(string? Objective, string Loss, string Baseline, PairedMetric Metric, IReadOnlyList<(double X, double Y)> Points, LinearFit? Fit)
{
    /// <summary>How many distinct codebook sizes the points span.</summary>
    public int Codebooks => Points.Select(p => p.X).Distinct().Count();

    /// <summary>One trend per (objective, compared loss, baseline) of <paramref name="comparisons"/> with a known K and at least one paired value.</summary>
    public static IReadOnlyList<KTrend> Of(IReadOnlyList<BaselineComparison> comparisons, PairedMetric metric) =>
        comparisons.Where(c => c.Baseline.CodebookSize is > 0)
            .GroupBy(c => (c.Baseline.Objective, c.Compared.Loss, Baseline: c.Baseline.Loss))
            .Select(g =>
            {
                var points = g.OrderBy(c => c.Baseline.CodebookSize)
                    .SelectMany(c => c.Differences(metric.Value).Select(d => (X: Math.Log2(c.Baseline.CodebookSize!.Value), Y: d.Difference)))
                    .ToList();
                return new KTrend(g.Key.Objective, g.Key.Loss, g.Key.Baseline, metric, points, LinearFit.Of(points));
            })
            .Where(t => t.Points.Count > 0)
            .ToList();
}
