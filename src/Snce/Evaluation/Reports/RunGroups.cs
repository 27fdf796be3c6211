using System.Globalization;
using Snce.Losses;

namespace Snce.Evaluation.Reports;

/// <summary>Runs that differ only in their seed: same objective, loss (label and kind) and codebook size.</summary>
public sealed record RunGroup(string? Objective, string Loss, int? CodebookSize, IReadOnlyList<RunMetrics> Runs)
{
    /// <summary>The loss the group's runs trained (they share it), or null when their records name no known loss.</summary>
    public LossKind? Kind => Runs[0].Info.Kind;

    /// <summary>Whether the group is a cross-entropy baseline (by its typed loss, not its label).</summary>
    public bool IsCrossEntropy => Kind == LossKind.CrossEntropy;

    /// <summary>e.g. "snce", "snce K=4096", "mask snce K=4096", leaving out what all groups share.</summary>
    public string Label(bool withObjective, bool withCodebook) =>
        string.Join(' ', new[] { withObjective ? Objective : null, Loss, withCodebook && CodebookSize is { } k ? $"K={k}" : null }.Where(s => s is not null));

    /// <summary>Seed mean ± std of each run's last FD-ResNet18.</summary>
    public Summary FinalFd => Summary.Of(Runs.Select(r => r.FinalFd));
    /// <summary>Seed mean ± std of each run's last validation cross-entropy (nats per token).</summary>
    public Summary FinalValCe => Summary.Of(Runs.Select(r => r.FinalValCe));

    /// <summary>Mean ± std over seeds at each step that every run of the group logged.</summary>
    public IReadOnlyList<(long Step, Summary Value)> MeanCurve(Func<RunMetrics, IReadOnlyList<MetricPoint>> series)
    {
        var perRun = Runs.Select(r => series(r).ToDictionary(p => p.Step, p => p.Value)).ToList();
        if (perRun.Any(d => d.Count == 0)) return [];
        var steps = perRun.Skip(1).Aggregate(new SortedSet<long>(perRun[0].Keys), (acc, d) => { acc.IntersectWith(d.Keys); return acc; });
        return steps.Select(s => (s, Summary.Of(perRun.Select(d => (double?)d[s])))).ToList();
    }

    /// <summary>Groups runs by (objective, loss label and kind, codebook size), in a stable order (objective, K, CE first, then loss label).</summary>
    public static IReadOnlyList<RunGroup> Of(IEnumerable<RunMetrics> runs) =>
        runs.GroupBy(r => (r.Info.Objective, r.Info.Loss, r.Info.Kind, r.Info.CodebookSize))
            .Select(g => new RunGroup(g.Key.Objective, g.Key.Loss, g.Key.CodebookSize, g.OrderBy(r => r.Info.Seed).ThenBy(r => r.Info.Name, StringComparer.Ordinal).ToList()))
            .OrderBy(g => g.Objective, StringComparer.Ordinal).ThenBy(g => g.CodebookSize ?? 0).ThenBy(g => g.IsCrossEntropy ? 0 : 1).ThenBy(g => g.Loss, StringComparer.Ordinal)
            .ToList();
}

/// <summary>Mean and sample standard deviation (n − 1; null for one value) of the values present.</summary>
public readonly record struct Summary(double? Mean, double? Std, int Count)
{
    /// <summary>The summary of the finite values among <paramref name="values"/> (nulls, NaN and infinities are skipped).</summary>
    public static Summary Of(IEnumerable<double?> values)

    {
        var v = values.Where(x => x is { } d && double.IsFinite(d)).Select(x => x!.Value).ToArray();
        if (v.Length == 0) return new Summary(null, null, 0);
        var mean = v.Average();
        double? std = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : null;
        return new Summary(mean, std, v.Length);
    }

    /// <summary>"12.34 ± 0.56", "12.34" for one value, "–" for none.</summary>
    public string Format(string format) =>
        Mean is not { } m ? "–" : Std is { } s ? $"{m.ToString(format, CultureInfo.InvariantCulture)} ± {s.ToString(format, CultureInfo.InvariantCulture)}" : m.ToString(format, CultureInfo.InvariantCulture);
}
