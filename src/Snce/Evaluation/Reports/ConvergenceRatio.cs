namespace Snce.Evaluation.Reports;

/// <summary>
/// How fast a loss reaches the final FD-ResNet18 of CE (same objective and codebook size): the first step at which
/// the loss's seed-mean FD curve is at or below CE's seed-mean final FD, divided by CE's final step.
/// A ratio below 1 means fewer steps than CE needed; null Step means the loss never got there.
/// </summary>
public sealed record ConvergenceRatio(string? Objective, int? CodebookSize, string Loss, double CeFinalFd, long CeSteps, long? Step)
{
    /// <summary>Step / CeSteps: below 1 the loss reached CE's final FD in fewer steps; null when it never did.</summary>
    public double? Ratio => Step is { } s ? (double)s / CeSteps : null;

    /// <summary>One ratio per non-CE group that has a CE group of the same objective and codebook size with an FD curve.</summary>
    public static IReadOnlyList<ConvergenceRatio> Of(IReadOnlyList<RunGroup> groups)

    {
        var result = new List<ConvergenceRatio>();
        foreach (var ce in groups.Where(g => g.Loss == "ce"))
        {
            var ceCurve = ce.MeanCurve(r => r.Fd);
            if (ceCurve.Count == 0 || ceCurve[^1].Value.Mean is not { } target) continue;
            var ceSteps = ceCurve[^1].Step;
            foreach (var other in groups.Where(g => g.Loss != "ce" && g.Objective == ce.Objective && g.CodebookSize == ce.CodebookSize))
            {
                var curve = other.MeanCurve(r => r.Fd);
                if (curve.Count == 0) continue;
                var reached = curve.FirstOrDefault(p => p.Value.Mean <= target);
                result.Add(new ConvergenceRatio(ce.Objective, ce.CodebookSize, other.Loss, target, ceSteps, reached.Value.Count > 0 ? reached.Step : null));
            }
        }
        return result;
    }
}
