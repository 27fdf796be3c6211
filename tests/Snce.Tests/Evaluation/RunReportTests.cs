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
        foreach (var name in new[] { "fd_vs_steps_ar_K1024.png", "val_ce_vs_steps_ar_K4096.png", "final_fd_vs_codebook.png" })
        {
            var png = Path.Combine(root["report"], name);
            Assert.True(File.Exists(png), $"{name} missing; wrote {string.Join(", ", files.Plots)}");
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png).Take(4).ToArray());
            Assert.True(new FileInfo(png).Length > 10_000, $"{name} is suspiciously small");
        }
        Assert.Equal(6, files.Plots.Count); // 2 panels × (FD, val CE) + final FD and final val CE against K
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
        Assert.All(ratios, r => Assert.Equal(("baseline-lr1e-3", 40.0, 1000L), (r.Baseline, r.CeFinalFd, r.CeSteps)));
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
