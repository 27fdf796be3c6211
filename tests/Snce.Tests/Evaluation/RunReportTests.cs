using System.Text.Json;
using Snce.Evaluation.Reports;
using Snce.Tests.Support;

namespace Snce.Tests.Evaluation;

public class RunReportTests
{
    /// <summary>
    /// A fake run: FD falls linearly from 100 to <paramref name="finalFd"/> over steps 0..1000 (every 250), val CE from
    /// 8 to <paramref name="finalCe"/>, written as Snce's trainer and 'snce eval --log-to' write them.
    /// </summary>
    static string MakeRun(TempDir root, string loss, int k, int seed, double finalFd, double finalCe, bool flatConfig = true)
    {
        var dir = root[$"{loss}-k{k}-s{seed}"];
        Directory.CreateDirectory(dir);
        var lines = new List<string>();
        for (var step = 0; step <= 1000; step += 250)
        {
            var t = step / 1000.0;
            lines.Add(JsonSerializer.Serialize(new { step, split = "train", loss = 9 - t, lr = 1e-3 }));
            lines.Add(JsonSerializer.Serialize(new { step, split = "val", loss = 9.0, hard_ce = 8 + t * (finalCe - 8), accuracy = 0.1 }));
            lines.Add(JsonSerializer.Serialize(new { step, split = "eval", fd = 100 + t * (finalFd - 100), precision = 0.5, recall = 0.4, n = 1000 }));
        }
        File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), lines);
        if (flatConfig)
            File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new { loss, codebook_size = k, objective = "ar", seed }));
        else
        {
            Directory.CreateDirectory(Path.Combine(dir, "checkpoint"));
            File.WriteAllText(Path.Combine(dir, "checkpoint", "checkpoint.json"), JsonSerializer.Serialize(new
            {
                model = new { kind = "ar", codebook_size = k }, training = new { seed }, loss = new { name = loss, tau = (double?)null },
            }));
        }
        return dir;
    }

    [Fact]
    public void DrawsPlotsAndATableWithTheRightMeans()
    {
        using var root = new TempDir();
        var runs = new List<string>
        {
            MakeRun(root, "ce", 1024, 0, finalFd: 10, finalCe: 5.0),
            MakeRun(root, "ce", 1024, 1, finalFd: 12, finalCe: 5.2, flatConfig: false),
            MakeRun(root, "snce", 1024, 0, finalFd: 4, finalCe: 5.4),
            MakeRun(root, "snce", 1024, 1, finalFd: 6, finalCe: 5.6),
            MakeRun(root, "ce", 4096, 0, finalFd: 20, finalCe: 6.0),
            MakeRun(root, "snce", 4096, 0, finalFd: 8, finalCe: 6.5),
        };
        var files = RunReport.Write(runs, root["report"]);
        var md = File.ReadAllText(files.Markdown);
        // Per group: mean ± sample std over the two seeds.
        Assert.Contains("| ar | ce | 1024 | 2 | 11.000 ± 1.414 | 5.1000 ± 0.1414 |", md);
        Assert.Contains("| ar | snce | 1024 | 2 | 5.000 ± 1.414 | 5.5000 ± 0.1414 |", md);
        Assert.Contains("| ar | ce | 4096 | 1 | 20.000 | 6.0000 |", md);
        // SNCE's mean FD at K=1024 falls 100 → 5 (steps 0..1000 every 250): 100, 76.25, 52.5, 28.75, 5; CE's final is 11:
        // first reached at step 1000, ratio 1.00. At K=4096 (SNCE 100 → 8; CE 20): 100, 77, 54, 31, 8 → step 1000.
        Assert.Contains("| ar | 1024 | snce | 11.000 | 1000 | 1000 | 1.00 |", md);
        Assert.Contains("| ce-k1024-s1 | ar | ce | 1024 | 1 | 1000 | 12.000 | 5.2000 | 0.500 | 0.400 | – |", md);
        foreach (var name in new[] { "fd_vs_steps_ar_K1024.png", "val_ce_vs_steps_ar_K4096.png", "final_fd_vs_codebook.png", "best_fd_difference_vs_codebook.png" })
        {
            var png = Path.Combine(root["report"], name);
            Assert.True(File.Exists(png), $"{name} missing; wrote {string.Join(", ", files.Plots)}");
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png).Take(4).ToArray());
            Assert.True(new FileInfo(png).Length > 10_000, $"{name} is suspiciously small");
        }
        Assert.Equal(8, files.Plots.Count); // 2 panels × (FD, val CE) + final FD, final val CE, best-FD difference and steps to CE's best against K
    }

    [Fact]
    public void ReportsMemorizationAtTheLastAndTheBestEvaluationAndTheFinalEvaluations()
    {
        using var root = new TempDir();
        var dir = root["mem"];
        Directory.CreateDirectory(dir);
        // FD 90, 40, 60 at steps 100..300: the best is step 200; memorization grows with the steps.
        (int Step, double Fd, double Train, double Nn, double Copy)[] evals = [(100, 90.0, 89.0, 1.2, 0.0), (200, 40.0, 38.5, 1.01, 0.0), (300, 60.0, 52.25, 0.875, 0.125)];
        File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), evals.Select(e => JsonSerializer.Serialize(new
        {
            step = e.Step, split = "eval", fd = e.Fd, fd_train = e.Train, nn_ratio = e.Nn, copy_fraction = e.Copy, n = 100,
        })));
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new { loss = "ce", codebook_size = 64, objective = "ar", seed = 0 }));
        File.WriteAllText(Path.Combine(dir, "final-last.json"), JsonSerializer.Serialize(new
        {
            n = 5000, step = 300, fd = 55.5, fd_train = 50.25, precision = 0.7, recall = 0.3, class_accuracy = 0.95, nn_ratio = 0.9, copy_fraction = 0.25,
        }));
        File.WriteAllText(Path.Combine(dir, "final-best.json"), JsonSerializer.Serialize(new { n = 5000, step = 200, fd = 35.25, precision = 0.6 }));

        var run = RunReader.Read(dir);
        Assert.Equal(new MetricPoint(200, 40), run.BestFd);
        Assert.Equal([89.0, 38.5, 52.25], run.FdTrain.Select(p => p.Value));
        Assert.Equal(["last", "best"], run.Finals.Select(f => f.Which));
        Assert.Null(run.Finals[1].NnRatio);                                  // not measured: absent, not zero

        var files = RunReport.Write([dir], root["report"]);
        var md = File.ReadAllText(files.Markdown);
        Assert.Contains("| mem | 300 | 60.00 | 52.25 | 0.875 | 12.5 % | 200 | 40.00 | 38.50 | 1.010 | 0.0 % |", md);
        Assert.Contains("| mem | last | 300 | 5000 | 55.50 | 50.25 | 0.700 | 0.300 | 0.950 | 0.900 | 25.0 % |", md);
        Assert.Contains("| mem | best | 200 | 5000 | 35.25 | – | 0.600 | – | – | – | – |", md);
        Assert.Contains(files.Plots, p => Path.GetFileName(p) == "nn_ratio_vs_steps.png");
    }

    /// <summary>
    /// A fake run evaluated at steps 250, 500, ...: FD <paramref name="fds"/>, and at the last step val CE <paramref name="valCe"/>
    /// and, when given, NN ratio and copy fraction.
    /// </summary>
    static string WriteRun(TempDir root, string loss, int k, int seed, double[] fds, double valCe, double? nn = null, double? copies = null,
        string objective = "ar")
    {
        var dir = root[$"{objective}-{loss}-k{k}-s{seed}"];
        Directory.CreateDirectory(dir);
        var lines = new List<string>();
        for (var i = 0; i < fds.Length; i++)
        {
            var step = 250 * (i + 1);
            var last = i == fds.Length - 1;
            lines.Add(JsonSerializer.Serialize(new { step, split = "eval", fd = fds[i], nn_ratio = last ? nn : null, copy_fraction = last ? copies : null, n = 1000 }));
        }
        lines.Add(JsonSerializer.Serialize(new { step = 250 * fds.Length, split = "val", hard_ce = valCe }));
        File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), lines);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new { loss, codebook_size = k, objective, seed }));
        return dir;
    }

    [Fact]
    public void PairsSeedsForTheStepsToCesBestFdAndTheDifferences()
    {
        using var root = new TempDir();
        // FD at steps 250..1000. CE seed-mean 85, 55, 35, 40 (best 35 at 750, final 40); SNCE mean 65, 41.5, 32, 32:
        // first ≤ 35 at 750 (ratio 1.00), first ≤ 40 at 750 (0.75 of 1000). Per seed: CE s0's best 40 at 750, SNCE s0 ≤ 40 at
        // 500 → 2/3; CE s1's best 30 at 750, SNCE s1 ≤ 30 at 750 → 1; mean 0.8333, std √(2/36) = 0.2357. CE seed 2 has no SNCE
        // twin (its curve is the mean of the others', so the means stay): it is left out of every pair.
        var dirs = new[]
        {
            WriteRun(root, "ce", 256, 0, [80, 50, 40, 45], 5.0, nn: 0.95, copies: 0.02),
            WriteRun(root, "ce", 256, 1, [90, 60, 30, 35], 5.2, nn: 0.97, copies: 0.04),
            WriteRun(root, "ce", 256, 2, [85, 55, 35, 40], 5.1, nn: 0.5, copies: 0.5),
            WriteRun(root, "snce", 256, 0, [60, 38, 35, 36], 5.3, nn: 1.00, copies: 0.01),
            WriteRun(root, "snce", 256, 1, [70, 45, 29, 28], 5.6, nn: 1.06, copies: 0.01),
        };
        var groups = RunGroup.Of(dirs.Select(RunReader.Read).ToList());
        var best = Assert.Single(ConvergenceRatio.Of(groups, FdTarget.Best));
        Assert.Equal((35.0, 750L, 750L, 1.0), (best.CeFd, best.CeStep, best.Step!.Value, best.Ratio!.Value));
        Assert.Equal(2, best.SeedRatios.Count);
        Assert.Equal(2.0 / 3, best.SeedRatios[0]!.Value, 12);
        Assert.Equal(1.0, best.SeedRatios[1]!.Value, 12);
        Assert.Equal(Math.Sqrt(2.0 / 36), best.SeedRatioSummary.Std!.Value, 12);
        Assert.Equal(0.75, Assert.Single(ConvergenceRatio.Of(groups)).Ratio);

        var comparison = Assert.Single(BaselineComparison.Of(groups));
        Assert.Equal([0L, 1L], comparison.SeedPairs().Select(p => p.Seed!.Value));
        // Best FD: s0 35 − 40, s1 28 − 30 → −5, −2; final: 36 − 45, 28 − 35 → −9, −7; val CE +0.3, +0.4.
        Assert.Equal([-5.0, -2.0], comparison.Differences(PairedMetric.BestFd.Value).Select(d => d.Difference));

        var md = File.ReadAllText(RunReport.Write(dirs, root["report"]).Markdown);
        Assert.Contains("## Steps to reach CE's final FD-ResNet18", md);
        Assert.Contains("| objective | K | loss | CE final FD | CE steps | step reached | ratio |\n|---|---:|---|---:|---:|---:|---:|\n", md.ReplaceLineEndings("\n"));
        Assert.Contains("## Steps to reach CE's best FD-ResNet18", md);
        Assert.Contains("| objective | K | loss | CE best FD | CE step | step reached | ratio | per seed, paired |\n|---|---:|---|---:|---:|---:|---:|---:|\n", md.ReplaceLineEndings("\n"));
        Assert.Contains("| ar | 256 | snce | 40.000 | 1000 | 750 | 0.75 |", md);           // the final-FD table is kept
        Assert.Contains("| ar | 256 | snce | 35.000 | 750 | 750 | 1.00 | 0.83 ± 0.24 (2/2) |", md);
        Assert.Contains("| ar | 256 | snce | 2 | 35.00 | 31.50 | -3.50 ± 2.12 | -8.00 ± 1.41 | +0.3500 ± 0.0707 |", md);
        // NN ratio 0.95, 0.97 vs 1.00, 1.06 → +0.05, +0.09; copies 2 %, 4 % vs 1 %, 1 % → −1, −3 pp.
        Assert.Contains("| ar | 256 | snce | 2 | 0.960 | 1.030 | +0.070 ± 0.028 | 3.00 | 1.00 | -2.00 ± 1.41 |", md);
        Assert.Contains("| ar | snce | best FD, final FD, final val CE, NN ratio (last eval), copies % (last eval) | 2 | 1 | needs ≥ 3 points | – | – |", md);
    }

    [Fact]
    public void FitsTheBestFdGapAgainstLog2K()
    {
        using var root = new TempDir();
        // Best FD differences (SNCE − CE) by K and seed: K 256 −2, −4; K 1024 −6, −8; K 4096 −10, −12. Against x = log2 K
        // (8, 10, 12) the means fall 4 per 2 doublings: slope −2; residuals ±1 → SSE 6, s² 6/4, Sxx 2·(4 + 0 + 4) = 16,
        // SE √(1.5/16) = 0.3062, 95 %: −2 ± t(0.975, 4)·SE = −2 ± 2.7764·0.3062 → [−2.850, −1.150].
        // Val CE: SNCE − CE = 0.1·log2 K − 0.5 exactly → slope +0.1, SE 0.
        var dirs = new List<string>();
        foreach (var (k, d) in new[] { (256, new[] { -2.0, -4.0 }), (1024, new[] { -6.0, -8.0 }), (4096, new[] { -10.0, -12.0 }) })
            for (var seed = 0; seed < 2; seed++)
            {
                dirs.Add(WriteRun(root, "ce", k, seed, [100, 80, 60, 50], 5.0));
                dirs.Add(WriteRun(root, "snce", k, seed, [100, 80, 60, 50 + d[seed]], 5.0 + 0.1 * Math.Log2(k) - 0.5));
            }
        var comparisons = BaselineComparison.Of(RunGroup.Of(dirs.Select(RunReader.Read).ToList()));
        var fd = Assert.Single(KTrend.Of(comparisons, PairedMetric.BestFd));
        Assert.Equal((6, 3), (fd.Points.Count, fd.Codebooks));
        Assert.Equal(-2, fd.Fit!.Slope, 12);
        Assert.Equal(Math.Sqrt(1.5 / 16), fd.Fit.SlopeStdError, 12);
        Assert.Equal(-2 - 2.776445 * Math.Sqrt(1.5 / 16), fd.Fit.SlopeInterval95.Lower, 5);
        var ce = Assert.Single(KTrend.Of(comparisons, PairedMetric.FinalValCe));
        Assert.Equal(0.1, ce.Fit!.Slope, 12);
        Assert.Equal(0, ce.Fit.SlopeStdError, 9);

        var md = File.ReadAllText(RunReport.Write(dirs, root["report"]).Markdown);
        Assert.Contains("| ar | snce | best FD | 6 | 3 | -2.00 | 0.31 | [-2.85, -1.15] |", md);
        Assert.Contains("| ar | snce | final val CE | 6 | 3 | +0.1000 | 0.0000 | [+0.1000, +0.1000] |", md);
        Assert.Contains("| ar | 4096 | snce | 2 | 50.00 | 39.00 | -11.00 ± 1.41 | -11.00 ± 1.41 | +0.7000 ± 0.0000 |", md);
        Assert.True(File.Exists(Path.Combine(root["report"], "best_fd_difference_vs_codebook.png")));
    }

    [Fact]
    public void PairsTheFinalEvaluationsAndFitsTheirGapAgainstLog2K()
    {
        using var root = new TempDir();
        // Final evaluations (n = 5,000), last / best checkpoint FD by K and seed, CE then SNCE:
        // K 256:  last CE 60, 62 vs SNCE 55, 58 → −5, −4 (−4.50 ± 0.71); best CE 58, 59 vs 54, 57 → −4, −2 (−3.00 ± 1.41).
        // K 1024: last CE 70, 72 vs 68, 71 → −2, −1 (−1.50 ± 0.71); best CE 66, 67 vs 65, 66 → −1, −1 (−1.00 ± 0.00).
        // Last-checkpoint gap against x = log2 K (8, 10): slope (−1.5 − −4.5) / 2 = +1.5, residuals ±0.5 → SSE 1, s² 1/2,
        // Sxx 4, SE √(0.5/4) = 0.354, 95 %: 1.5 ± t(0.975, 2) 4.3027 · 0.354 → [−0.02, +3.02].
        var finals = new Dictionary<(string, int), (double[] Last, double[] Best)>
        {
            [("ce", 256)] = ([60, 62], [58, 59]), [("snce", 256)] = ([55, 58], [54, 57]),
            [("ce", 1024)] = ([70, 72], [66, 67]), [("snce", 1024)] = ([68, 71], [65, 66]),
        };
        var dirs = new List<string>();
        foreach (var ((loss, k), (last, best)) in finals)
            for (var seed = 0; seed < 2; seed++)
            {
                var dir = WriteRun(root, loss, k, seed, [100, 80], 5.0);
                File.WriteAllText(Path.Combine(dir, "final-last.json"), JsonSerializer.Serialize(new { n = 5000, step = 500, fd = last[seed] }));
                File.WriteAllText(Path.Combine(dir, "final-best.json"), JsonSerializer.Serialize(new { n = 5000, step = 500, fd = best[seed] }));
                dirs.Add(dir);
            }
        var comparisons = BaselineComparison.Of(RunGroup.Of(dirs.Select(RunReader.Read).ToList()));
        var trend = Assert.Single(KTrend.Of(comparisons, PairedMetric.LastCheckpointFd));
        Assert.Equal(1.5, trend.Fit!.Slope, 12);
        Assert.Equal(Math.Sqrt(0.5 / 4), trend.Fit.SlopeStdError, 12);

        var md = File.ReadAllText(RunReport.Write(dirs, root["report"]).Markdown);
        Assert.Contains("## Final-evaluation difference", md);
        Assert.Contains("| ar | 256 | snce | 2 | 5000 | 61.00 | 56.50 | -4.50 ± 0.71 | 58.50 | 55.50 | -3.00 ± 1.41 |", md);
        Assert.Contains("| ar | 1024 | snce | 2 | 5000 | 71.00 | 69.50 | -1.50 ± 0.71 | 66.50 | 65.50 | -1.00 ± 0.00 |", md);
        Assert.Contains("| ar | snce | final-eval FD, last ckpt | 4 | 2 | +1.50 | 0.35 | [-0.02, +3.02] |", md);
    }

    [Fact]
    public void OneSeedSaysItHasNoSpread()
    {
        using var root = new TempDir();
        var dirs = new[] { MakeRun(root, "ce", 256, 0, 40, 5), MakeRun(root, "snce", 256, 0, 30, 5.25), MakeRun(root, "ce", 1024, 0, 50, 6), MakeRun(root, "snce", 1024, 0, 35, 6) };
        var md = File.ReadAllText(RunReport.Write(dirs, root["report"]).Markdown);
        Assert.Contains("| ar | 256 | snce | 1 | 40.00 | 30.00 | -10.00 (n = 1: no spread) | -10.00 (n = 1: no spread) | +0.2500 (n = 1: no spread) |", md);
        // Linear curves reach their best at the end: SNCE 100 → 30 first ≤ CE's best 40 at step 1000.
        Assert.Contains("| ar | 256 | snce | 40.000 | 1000 | 1000 | 1.00 | n = 1: no spread |", md);
        Assert.Contains("| ar | snce | best FD, final FD, final val CE | 2 | 2 | needs ≥ 3 points | – | – |", md);
        Assert.DoesNotContain("## Memorization difference", md);
    }

    [Fact]
    public void PlotsTheTablesStepsToCesBestAndDrawsNeverOnItsOwnRow()
    {
        using var root = new TempDir();
        // FD at steps 250..1000. AR, K 256: CE s0 best 40 at 750 (SNCE s0 ≤ 40 at 500 → 2/3), CE s1 best 30 at 750 (SNCE s1
        // never ≤ 30) → seeds 2/3 and never, mean of the one that got there 2/3. AR, K 1024: CE best 50 at 1000, SNCE ≤ 50 at
        // 250 → 1/4 (one seed). Masked, K 256: CE best 20 at 500, SNCE never below 20 → never, and its mean too.
        var dirs = new[]
        {
            WriteRun(root, "ce", 256, 0, [80, 50, 40, 45], 5.0), WriteRun(root, "snce", 256, 0, [60, 38, 35, 36], 5.0),
            WriteRun(root, "ce", 256, 1, [90, 60, 30, 35], 5.0), WriteRun(root, "snce", 256, 1, [70, 45, 31, 33], 5.0),
            WriteRun(root, "ce", 1024, 0, [90, 70, 60, 50], 5.0), WriteRun(root, "snce", 1024, 0, [50, 45, 40, 35], 5.0),
            WriteRun(root, "ce", 256, 0, [60, 20, 30, 40], 5.0, objective: "mask"), WriteRun(root, "snce", 256, 0, [70, 50, 40, 30], 5.0, objective: "mask"),
        };
        var ratios = ConvergenceRatio.Of(RunGroup.Of(dirs.Select(RunReader.Read).ToList()), FdTarget.Best);
        var layout = StepsToBestLayout.Of(ratios)!;
        Assert.Equal(["ar", "mask"], layout.Series.Select(s => s.Objective));
        Assert.Equal([256, 1024], layout.Codebooks);
        var ar = layout.Series[0];
        Assert.Equal([256, 256, 1024], ar.Seeds.Select(m => m.CodebookSize));
        Assert.Equal(2.0 / 3, ar.Seeds[0].Ratio!.Value, 12);
        Assert.Equal(ar.Seeds[0].Ratio, ar.Seeds[0].Y);
        Assert.Null(ar.Seeds[1].Ratio);
        Assert.Equal(0.25, ar.Seeds[2].Ratio);
        Assert.Equal((2.0 / 3, 1, 2), (ar.Means[0].Ratio!.Value, ar.Means[0].Reached, ar.Means[0].Paired));
        var mask = Assert.Single(layout.Series[1].Means);
        Assert.Equal((null, 0, 1), (mask.Ratio, mask.Reached, mask.Paired));
        // Every mark without a ratio, and only those, sits on the "never" row; it lies above every number and above 1, and its
        // tick is the only one that is not a number.
        var marks = layout.Series.SelectMany(s => s.Seeds.Concat(s.Means)).ToList();
        Assert.All(marks, m => Assert.Equal(m.Ratio is null, m.Y == layout.NeverY));
        Assert.All(marks.Where(m => m.Ratio is not null), m => Assert.Equal(m.Ratio!.Value, m.Y));
        Assert.True(layout.NeverY > Math.Max(1, marks.Where(m => m.Ratio is not null).Max(m => m.Y)));
        Assert.Equal((layout.NeverY, StepsToBestLayout.Never), layout.Ticks[^1]);
        Assert.All(layout.Ticks.SkipLast(1), t => Assert.Equal(t.Y, double.Parse(t.Label, System.Globalization.CultureInfo.InvariantCulture), 9));
        Assert.True(layout.Ticks.SkipLast(1).Max(t => t.Y) >= 1);                 // the dashed line at 1 has numbers around it
        // Seeds at one K are drawn side by side, around the mean's x.
        Assert.NotEqual(ar.Seeds[0].X, ar.Seeds[1].X);
        Assert.Equal(ar.Means[0].X, (ar.Seeds[0].X + ar.Seeds[1].X) / 2, 12);

        // The table prints the same numbers: the seed-mean curve's ratio, and the paired seeds' mean with reached / paired.
        var files = RunReport.Write(dirs, root["report"]);
        var md = File.ReadAllText(files.Markdown);
        Assert.Contains("| ar | 256 | snce | 35.000 | 750 | 750 | 1.00 | 0.67 (1/2) |", md);
        Assert.Contains("| ar | 1024 | snce | 50.000 | 1000 | 250 | 0.25 | n = 1: no spread |", md);
        Assert.Contains("| mask | 256 | snce | 20.000 | 500 | not reached | – | not reached (0/1) |", md);
        var png = Assert.Single(files.Plots, p => Path.GetFileName(p) == ReportPlots.StepsToBestFile);
        Assert.True(new FileInfo(png).Length > 10_000, "the plot is suspiciously small");
        Assert.Contains($"]({ReportPlots.StepsToBestFile})", md);
    }

    [Fact]
    public void ConvergenceRatioFindsTheFirstStepBelowCesFinalFd()
    {
        using var root = new TempDir();
        // CE ends at 40; SNCE goes 100 → 0, i.e. 100, 75, 50, 25, 0: first ≤ 40 at step 750 of CE's 1000.
        var runs = new[] { MakeRun(root, "ce", 256, 0, 40, 5), MakeRun(root, "snce", 256, 0, 0, 5), MakeRun(root, "label-smoothing", 256, 0, 60, 5) }
            .Select(RunReader.Read).ToList();
        var ratios = ConvergenceRatio.Of(RunGroup.Of(runs));
        var snce = Assert.Single(ratios, r => r.Loss == "snce");
        Assert.Equal(750, snce.Step);
        Assert.Equal(0.75, snce.Ratio);
        var ls = Assert.Single(ratios, r => r.Loss == "label-smoothing");
        Assert.Null(ls.Step);
    }

    /// <summary>A run labelled <paramref name="label"/> in its flat config, which trained <paramref name="loss"/> (as the study's loss_name or the trainer's manifest says).</summary>
    static string MakeLabelledRun(TempDir root, string label, string loss, double finalFd, bool inManifest)
    {
        var dir = MakeRun(root, label, 256, 0, finalFd, 5);
        if (inManifest)
        {
            Directory.CreateDirectory(Path.Combine(dir, "checkpoint"));
            File.WriteAllText(Path.Combine(dir, "checkpoint", "checkpoint.json"), JsonSerializer.Serialize(new { model = new { kind = "ar", codebook_size = 256 }, loss = new { kind = loss } }));
        }
        else File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new { loss = label, loss_name = loss, codebook_size = 256, objective = "ar", seed = 0 }));
        return dir;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ACeBaselineUnderAnotherLabelIsStillTheBaseline(bool inManifest)
    {
        using var root = new TempDir();
        // CE labelled "baseline-lr1e-3" ends at 40; SNCE labelled "snce-p4" goes 100 → 0: first ≤ 40 at step 750 of 1000.
        // A run labelled "ce" that trained SNCE is not a baseline: by label it would be, by what it trained it is not.
        var runs = new[]
        {
            MakeLabelledRun(root, "baseline-lr1e-3", "ce", 40, inManifest), MakeLabelledRun(root, "snce-p4", "snce", 0, inManifest),
            MakeLabelledRun(root, "ce", "snce", 60, inManifest),
        }.Select(RunReader.Read).ToList();
        Assert.Equal([Snce.Losses.LossKind.CrossEntropy, Snce.Losses.LossKind.Snce, Snce.Losses.LossKind.Snce], runs.Select(r => r.Info.Kind));
        var groups = RunGroup.Of(runs);
        Assert.Equal("baseline-lr1e-3", groups[0].Loss);                       // CE first in its cell
        var ratios = ConvergenceRatio.Of(groups);
        Assert.Equal(2, ratios.Count);
        Assert.All(ratios, r => Assert.Equal(("baseline-lr1e-3", 40.0, 1000L), (r.Baseline, r.CeFd, r.CeStep)));
        var snce = Assert.Single(ratios, r => r.Loss == "snce-p4");
        Assert.Equal(0.75, snce.Ratio);
        Assert.Null(Assert.Single(ratios, r => r.Loss == "ce").Step);          // 60 never reaches 40
        var md = File.ReadAllText(RunReport.Write(runs.Select(r => r.Info.Dir).ToList(), root["report"]).Markdown);
        Assert.Contains("| ar | 256 | snce-p4 (vs baseline-lr1e-3) | 40.000 | 1000 | 750 | 0.75 |", md);
    }

    [Fact]
    public void TunedRunsAreComparedWithTheCeTunedAlike()
    {
        using var root = new TempDir();
        // `snce study --tune-lrs 5e-4`: ce and snce at the study's lr, ce-lr5e-4 and snce-lr5e-4 at the other. The tuned SNCE
        // (100 → 0) is compared with the tuned CE (final 40: first ≤ 40 at step 750), the plain one with plain CE (final 20: 1000).
        var runs = new[]
        {
            MakeLabelledRun(root, "ce", "ce", 20, inManifest: false), MakeLabelledRun(root, "snce", "snce", 0, inManifest: false),
            MakeLabelledRun(root, "ce-lr5e-4", "ce", 40, inManifest: false), MakeLabelledRun(root, "snce-lr5e-4", "snce", 0, inManifest: false),
        }.Select(RunReader.Read).ToList();
        var ratios = ConvergenceRatio.Of(RunGroup.Of(runs));
        Assert.Equal(2, ratios.Count);
        Assert.Equal(("ce-lr5e-4", 0.75), Assert.Single(ratios, r => r.Loss == "snce-lr5e-4") is var t ? (t.Baseline, t.Ratio) : default);
        Assert.Equal(("ce", 1.0), Assert.Single(ratios, r => r.Loss == "snce") is var p ? (p.Baseline, p.Ratio) : default);
        // The codebook-embedding arm (`--tune-codebook-embeddings`): snce-cbemb against ce-cbemb, never against plain ce.
        var withArm = runs.Concat(new[] { MakeLabelledRun(root, "ce-cbemb", "ce", 40, inManifest: false), MakeLabelledRun(root, "snce-cbemb", "snce", 0, inManifest: false) }
            .Select(RunReader.Read)).ToList();
        var armRatios = ConvergenceRatio.Of(RunGroup.Of(withArm));
        Assert.Equal(3, armRatios.Count);
        Assert.Equal("ce-cbemb", Assert.Single(armRatios, r => r.Loss == "snce-cbemb").Baseline);
    }

    [Fact]
    public void ARunOfAnUnknownLossIsNeverTheBaseline()
    {
        using var root = new TempDir();
        var runs = new[] { MakeRun(root, "ce", 256, 0, 40, 5), MakeRun(root, "my-loss", 256, 0, 0, 5) }.Select(RunReader.Read).ToList();
        Assert.Null(runs[1].Info.Kind);
        var ratio = Assert.Single(ConvergenceRatio.Of(RunGroup.Of(runs)));
        Assert.Equal(("my-loss", "ce", 0.75), (ratio.Loss, ratio.Baseline, ratio.Ratio));
        Assert.Equal("my-loss", ratio.Describe());
    }

    [Fact]
    public void ReadsTheTrainersValidationRecordsAsValCe()
    {
        using var root = new TempDir();
        var run = RunReader.Read(MakeRun(root, "snce", 1024, 3, 7, 4.5, flatConfig: false));
        Assert.Equal("snce", run.Info.Loss);
        Assert.Equal("ar", run.Info.Objective);
        Assert.Equal(1024, run.Info.CodebookSize);
        Assert.Equal(3, run.Info.Seed);
        Assert.Equal(5, run.ValCe.Count);
        Assert.Equal(4.5, run.FinalValCe!.Value, 9);
        Assert.Equal(7, run.FinalFd!.Value, 9);
        Assert.Equal(8.0, run.TrainLoss[^1].Value, 9);
    }

    [Fact]
    public void BadRunsFailClearly()
    {
        using var root = new TempDir();
        var missing = CliRunner.Run("report", root["nope"], "--out", root["out"]);
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, missing.ExitCode);
        Assert.Contains("no run folder", missing.Stderr);

        var run = MakeRun(root, "ce", 16, 0, 1, 1);
        File.AppendAllText(Path.Combine(run, "metrics.jsonl"), "{\"fd\": 3}\n");
        var e = Assert.Throws<InvalidDataException>(() => RunReader.Read(run));
        Assert.Contains("metrics.jsonl:16", e.Message);
        Assert.Contains("'step'", e.Message);

        var noConfig = root["bare"];
        Directory.CreateDirectory(noConfig);
        File.WriteAllText(Path.Combine(noConfig, "metrics.jsonl"), "{\"step\": 1, \"fd\": 2}\n");
        Assert.Contains("config.json", Assert.Throws<FileNotFoundException>(() => RunReader.Read(noConfig)).Message);
    }

    [Fact]
    public void CliWritesTheReport()
    {
        using var root = new TempDir();
        var a = MakeRun(root, "ce", 64, 0, 10, 3);
        var b = MakeRun(root, "snce", 64, 0, 5, 3);
        var r = CliRunner.Run("report", a, b, "--out", root["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("report.md", r.Stdout);
        Assert.True(File.Exists(Path.Combine(root["out"], "fd_vs_steps.png")));
    }
}
