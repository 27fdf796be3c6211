using System.Text.Json;
using Snce.Study;
using Snce.Tests.Support;

namespace Snce.Tests.Study;

public class StudySummaryTests
{
    /// <summary>A study run folder as the executor leaves it: the flat config (label and loss name) and FD falling linearly from 100 to <paramref name="finalFd"/>.</summary>
    static void WriteRun(string root, StudyRun run, double finalFd)
    {
        var dir = Path.Combine(root, "runs", run.Name);
        Directory.CreateDirectory(dir);
        File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), Enumerable.Range(0, 5).Select(i => JsonSerializer.Serialize(new
        {
            step = i * 250, split = "eval", fd = 100 + i / 4.0 * (finalFd - 100),
        })));
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new
        {
            loss = run.Label, loss_name = run.Loss, objective = "autoregressive", codebook_size = run.CodebookSize, seed = run.Seed,
        }));
    }

    [Fact]
    public void TheCeVsSnceTableComparesTheHeadlineRunsByTheirLossKind()
    {
        using var dir = new TempDir();
        var root = dir["study"];
        // Given as CE and Snce; a τ-sweep point (snce-p4, better than either) is SNCE too but not the headline cell.
        var config = StudyConfig.Quick with { Losses = ["CE", "Snce"], SweepPerplexities = [4], CfgSchedule = Snce.Sampling.CfgSchedule.Linear };
        var runs = config.Runs();
        Assert.Equal(["ce", "snce", "snce-p4"], runs.Select(r => r.Label));
        foreach (var (run, fd) in runs.Zip(new[] { 40.0, 20.0, 5.0 })) WriteRun(root, run, fd);
        var md = File.ReadAllText(StudySummary.Write(root, config, runs, Array.Empty<StudySummary.Job>(), TimeSpan.FromMinutes(1)));
        // SNCE 100 → 20 (100, 80, 60, 40, 20) reaches CE's final 40 at step 750 of 1000: 0.75; SNCE − CE = −20.
        Assert.Contains("| autoregressive | 1024 | 40.00 | 20.00 | -20.00 | 0.75 |", md);
        Assert.DoesNotContain("| 5.00 |", md);
        // The guidance schedule of every evaluation is named, and study-config.json spells it as the command line does.
        Assert.Contains("(cfg 2, linear)", md);
        Assert.Contains("\"CfgSchedule\":\"linear\"", JsonSerializer.Serialize(config));
    }
}
