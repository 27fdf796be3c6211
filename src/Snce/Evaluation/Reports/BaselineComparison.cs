using Snce.Losses;

namespace Snce.Evaluation.Reports;

/// <summary>One run of each arm with the same seed: the CE baseline's and the compared loss's.</summary>
public sealed record SeedPair(long? Seed, RunMetrics Baseline, RunMetrics Compared);

/// <summary>One seed's value of a metric in both arms; <see cref="Difference"/> is compared − baseline.</summary>
public sealed record SeedDifference(long? Seed, double Baseline, double Compared)
{
    /// <summary>Compared − baseline (for FD: below 0, the compared loss is better).</summary>
    public double Difference => Compared - Baseline;
}

/// <summary>
/// A non-CE group next to its CE baseline: a CE group (by its typed loss, <see cref="RunGroup.IsCrossEntropy"/>, whatever its
/// label) and a non-CE group of the same objective, codebook size and <see cref="TuningSuffix"/>. CE groups are not compared with
/// each other.
/// </summary>
public sealed record BaselineComparison(RunGroup Baseline, RunGroup Compared)
{
    /// <summary>Every (CE, non-CE) pair of <paramref name="groups"/>, in the groups' order.</summary>
    public static IReadOnlyList<BaselineComparison> Of(IReadOnlyList<RunGroup> groups) =>
        groups.Where(g => g.IsCrossEntropy)
            .SelectMany(ce => groups.Where(g => !g.IsCrossEntropy && g.Objective == ce.Objective && g.CodebookSize == ce.CodebookSize
                                                && TuningSuffix(g) == TuningSuffix(ce))
                .Select(other => new BaselineComparison(ce, other)))
            .ToList();

    /// <summary>
    /// The two arms' runs paired by seed (seed s of the compared loss with seed s of CE), by seed; runs whose seed the other arm
    /// lacks are left out. Two arms of one run each and no recorded seed are paired with each other.
    /// </summary>
    public IReadOnlyList<SeedPair> SeedPairs()
    {
        if (Baseline.Runs.Count == 1 && Compared.Runs.Count == 1 && (Baseline.Runs[0].Info.Seed is null || Compared.Runs[0].Info.Seed is null))
            return [new SeedPair(Baseline.Runs[0].Info.Seed ?? Compared.Runs[0].Info.Seed, Baseline.Runs[0], Compared.Runs[0])];
        return Baseline.Runs.Where(r => r.Info.Seed is not null)
            .Join(Compared.Runs.Where(r => r.Info.Seed is not null), r => r.Info.Seed, r => r.Info.Seed, (b, c) => new SeedPair(b.Info.Seed, b, c))
            .GroupBy(p => p.Seed).Select(g => g.First())                    // two runs of one seed in an arm: the first (by name) counts
            .OrderBy(p => p.Seed).ToList();
    }

    /// <summary>The seeds' values of <paramref name="metric"/> in both arms, where both runs of the pair have it.</summary>
    public IReadOnlyList<SeedDifference> Differences(Func<RunMetrics, double?> metric) =>
        SeedPairs().Select(p => (p.Seed, B: metric(p.Baseline), C: metric(p.Compared)))
            .Where(p => p.B is { } b && double.IsFinite(b) && p.C is { } c && double.IsFinite(c))
            .Select(p => new SeedDifference(p.Seed, p.B!.Value, p.C!.Value)).ToList();

    /// <summary>The compared loss as a report names it: its label, with the baseline's when that is not plain <c>ce</c>.</summary>
    public string Describe() => Describe(Compared.Loss, Baseline.Loss);

    /// <summary><paramref name="loss"/>, followed by "(vs <paramref name="baseline"/>)" when the baseline is not plain <c>ce</c>.</summary>
    public static string Describe(string loss, string baseline) => baseline == LossKind.CrossEntropy.Name() ? loss : $"{loss} (vs {baseline})";

    /// <summary>
    /// A study tuning run's suffix: "-lr5e-4" of a group labelled ce-lr5e-4 that trained CE, "-do0.1" of snce-do0.1 that
    /// trained SNCE, "-cbemb" of snce-cbemb (`snce study --tune-lrs/--tune-dropouts/--tune-codebook-embeddings`); "" for any
    /// other label (snce-p4, a user's own name). A tuned CE group is compared only with the groups tuned alike, plain CE only
    /// with untuned ones.
    /// </summary>
    public static string TuningSuffix(RunGroup group) =>
        group.Kind is { } kind && System.Text.RegularExpressions.Regex.Match(group.Loss, $@"^{System.Text.RegularExpressions.Regex.Escape(kind.Name())}(-(lr|do)[0-9.]+(e-?[0-9]+)?|{System.Text.RegularExpressions.Regex.Escape(Snce.Study.StudyConfig.CodebookEmbeddingsSuffix)})$")
            is { Success: true } m ? m.Groups[1].Value : "";
}
