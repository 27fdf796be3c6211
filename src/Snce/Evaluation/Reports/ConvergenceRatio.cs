namespace Snce.Evaluation.Reports;

/// <summary>Which FD of the CE baseline a <see cref="ConvergenceRatio"/> asks the compared loss to reach.</summary>
public enum FdTarget
{
    /// <summary>CE's FD at its last evaluation.</summary>
    Final,
    /// <summary>CE's lowest FD over its evaluations (the earliest step of a tie).</summary>
    Best,
}

/// <summary>
/// How fast a loss reaches an FD-ResNet18 of a CE baseline (same objective and codebook size), CE's final or best one
/// (<see cref="Target"/>): the first step at which the loss's seed-mean FD curve is at or below CE's seed-mean target FD,
/// divided by the step at which CE's seed-mean curve had it (its final step, or the step of its minimum).
/// A ratio below 1 means fewer steps than CE needed; null Step means the loss never got there.
/// </summary>
/// <param name="Objective">The generator kind of both groups.</param>
/// <param name="CodebookSize">K of both groups.</param>
/// <param name="Loss">The compared group's loss label.</param>
/// <param name="CeFd">The baseline's seed-mean target FD: its final, or the minimum of its seed-mean curve.</param>
/// <param name="CeStep">The step at which the baseline's seed-mean curve had <paramref name="CeFd"/>.</param>
/// <param name="Step">The first step the compared loss reached <paramref name="CeFd"/>, or null.</param>
/// <param name="Baseline">The CE baseline's label (<c>ce</c>, or a user's own name for a CE run).</param>
/// <param name="Target">Whether <paramref name="CeFd"/> is CE's final or best FD.</param>
public sealed record ConvergenceRatio(string? Objective, int? CodebookSize, string Loss, double CeFd, long CeStep, long? Step, string Baseline,
    FdTarget Target = FdTarget.Final)
{
    /// <summary>Step / CeStep: below 1 the loss reached CE's target FD in fewer steps; null when it never did.</summary>
    public double? Ratio => Step is { } s && CeStep > 0 ? (double)s / CeStep : null;

    /// <summary>
    /// The same ratio per seed, paired by seed (<see cref="BaselineComparison.SeedPairs"/>): the compared run's first step at
    /// or below its CE seed's own target FD, over the step that CE run had it; null for a seed that never got there.
    /// </summary>
    public IReadOnlyList<double?> SeedRatios { get; init; } = [];

    /// <summary>Mean ± sample std of the <see cref="SeedRatios"/> of the seeds that reached the target.</summary>
    public Summary SeedRatioSummary => Summary.Of(SeedRatios);

    /// <summary>One ratio per <see cref="BaselineComparison"/> of <paramref name="groups"/> whose arms both have an FD curve.</summary>
    public static IReadOnlyList<ConvergenceRatio> Of(IReadOnlyList<RunGroup> groups, FdTarget target = FdTarget.Final)
    {
        var result = new List<ConvergenceRatio>();
        foreach (var c in BaselineComparison.Of(groups))
        {
            var ceCurve = MeanFd(c.Baseline);
            var curve = MeanFd(c.Compared);
            if (ceCurve.Count == 0 || curve.Count == 0) continue;
            var goal = TargetOf(ceCurve, target);
            var seedRatios = c.SeedPairs().Where(p => p.Baseline.Fd.Count > 0 && p.Compared.Fd.Count > 0)
                .Select(p => TargetOf(p.Baseline.Fd, target) is var own && FirstAtOrBelow(p.Compared.Fd, own.Value) is { } s && own.Step > 0
                    ? (double?)s / own.Step : null)
                .ToList();
            result.Add(new ConvergenceRatio(c.Baseline.Objective, c.Baseline.CodebookSize, c.Compared.Loss, goal.Value, goal.Step,
                FirstAtOrBelow(curve, goal.Value), c.Baseline.Loss, target) { SeedRatios = seedRatios });
        }
        return result;
    }

    static List<MetricPoint> MeanFd(RunGroup group) => group.MeanCurve(r => r.Fd).Select(p => new MetricPoint(p.Step, p.Value.Mean!.Value)).ToList();

    static MetricPoint TargetOf(IReadOnlyList<MetricPoint> curve, FdTarget target) => target switch
    {
        FdTarget.Final => curve[^1],
        FdTarget.Best => curve.MinBy(p => p.Value),
        _ => throw new ArgumentOutOfRangeException(nameof(target), target, "final or best"),
    };

    static long? FirstAtOrBelow(IReadOnlyList<MetricPoint> curve, double fd) => curve.Where(p => p.Value <= fd).Select(p => (long?)p.Step).FirstOrDefault();

    /// <summary>The compared loss as a report names it: its label, with the baseline's when that is not plain <c>ce</c>.</summary>
    public string Describe() => BaselineComparison.Describe(Loss, Baseline);
}
