using Snce.Losses;

namespace Snce.Evaluation.Reports;

/// <summary>
/// How fast a loss reaches the final FD-ResNet18 of a CE baseline (same objective and codebook size): the first step at
/// which the loss's seed-mean FD curve is at or below CE's seed-mean final FD, divided by CE's final step.
/// A ratio below 1 means fewer steps than CE needed; null Step means the loss never got there.
/// </summary>
/// <param name="Objective">The generator kind of both groups.</param>
/// <param name="CodebookSize">K of both groups.</param>
/// <param name="Loss">The compared group's loss label.</param>
/// <param name="CeFinalFd">The baseline's seed-mean final FD.</param>
/// <param name="CeSteps">The baseline's final step.</param>
/// <param name="Step">The first step the compared loss reached <paramref name="CeFinalFd"/>, or null.</param>
/// <param name="Baseline">The CE baseline's label (<c>ce</c>, or a user's own name for a CE run).</param>
public sealed record ConvergenceRatio(string? Objective, int? CodebookSize, string Loss, double CeFinalFd, long CeSteps, long? Step, string Baseline)
{
    /// <summary>Step / CeSteps: below 1 the loss reached CE's final FD in fewer steps; null when it never did.</summary>
    public double? Ratio => Step is { } s ? (double)s / CeSteps : null;

    /// <summary>
    /// One ratio per pair of a CE group (by its typed loss, <see cref="RunGroup.IsCrossEntropy"/>, whatever its label) with an
    /// FD curve and a non-CE group of the same objective, codebook size and <see cref="TuningSuffix"/>. CE groups are not
    /// compared with each other.
    /// </summary>
    public static IReadOnlyList<ConvergenceRatio> Of(IReadOnlyList<RunGroup> groups)
    {
        var result = new List<ConvergenceRatio>();
        foreach (var ce in groups.Where(g => g.IsCrossEntropy))
        {
            var ceCurve = ce.MeanCurve(r => r.Fd);
            if (ceCurve.Count == 0 || ceCurve[^1].Value.Mean is not { } target) continue;
            var ceSteps = ceCurve[^1].Step;
            foreach (var other in groups.Where(g => !g.IsCrossEntropy && g.Objective == ce.Objective && g.CodebookSize == ce.CodebookSize
                         && TuningSuffix(g) == TuningSuffix(ce)))
            {
                var curve = other.MeanCurve(r => r.Fd);
                if (curve.Count == 0) continue;
                var reached = curve.FirstOrDefault(p => p.Value.Mean <= target);
                result.Add(new ConvergenceRatio(ce.Objective, ce.CodebookSize, other.Loss, target, ceSteps, reached.Value.Count > 0 ? reached.Step : null, ce.Loss));
            }
        }
        return result;
    }

    /// <summary>
    /// A study tuning run's suffix: "-lr5e-4" of a group labelled ce-lr5e-4 that trained CE, "-do0.1" of snce-do0.1 that
    /// trained SNCE (`snce study --tune-lrs/--tune-dropouts`); "" for any other label (snce-p4, a user's own name). A tuned CE
    /// group is compared only with the groups tuned alike, plain CE only with untuned ones.
    /// </summary>
    public static string TuningSuffix(RunGroup group) =>
        group.Kind is { } kind && System.Text.RegularExpressions.Regex.Match(group.Loss, $@"^{System.Text.RegularExpressions.Regex.Escape(kind.Name())}(-(lr|do)[0-9.]+(e-?[0-9]+)?)$")
            is { Success: true } m ? m.Groups[1].Value : "";

    /// <summary>The compared loss as a report names it: its label, with the baseline's when that is not plain <c>ce</c>.</summary>
    public string Describe() => Baseline == LossKind.CrossEntropy.Name() ? Loss : $"{Loss} (vs {Baseline})";
}
