using System.Text.Json;
using Snce.Tests.Support;

namespace Snce.Tests.Study;

public class StudyCommandTests
{
    /// <summary>
    /// The whole study pipeline on the 250-digit MNIST fixture with tiny settings, as a separate process (the study
    /// starts the snce program itself for every job): tokenizer, tokenize, classifier, two generators with FD
    /// curves, sample grids, report and STUDY.md. The first call is stopped by SIGTERM while its tokenizer trains:
    /// the study forwards the stop, the tokenizer finishes its step and saves, the study exits 143; the second call
    /// resumes that tokenizer and finishes the study; a third has nothing left to do.
    /// </summary>
    [Fact]
    public async Task ATinyStudyStopsOnSigtermResumesAndRunsEndToEnd()
    {
        using var dir = new TempDir();
        var env = new Dictionary<string, string> { ["SNCE_CACHE"] = dir["cache"], ["OMP_NUM_THREADS"] = "1" };
        string[] args = ["study", "--preset", "quick", "--data", MnistSample.Dir, "--limit", "100", "--codebooks", "64", "--tokenizer-steps", "30", "--classifier-steps", "20",
            "--steps", "20", "--eval-every", "10", "--eval-images", "24", "--lr", "2e-3", "--warmup", "2", "--weight-decay", "0.01", "--dropout", "0.1",
            "--keep-best", "fd", "--final-eval-images", "30", "--tune-codebook-embeddings", "--device", "cpu", "--out", dir["study"]];

        var tokLog = dir["study/logs/tokenizer-K64.log"];
        string TokLog() => File.Exists(tokLog) ? ReadShared(tokLog) : "";
        CliRunner.Result stopped;
        using (var p = CliProcess.Start(env, args))
        {
            await p.WaitUntil(() => TokLog().Contains("tokenizer: ema quantizer"), "the tokenizer job", seconds: 300);
            p.Signal("TERM");
            stopped = await p.ExitAsync();
        }
        Assert.True(stopped.ExitCode == 143, $"exit {stopped.ExitCode}; stderr:\n{stopped.Stderr}");
        Assert.Contains("SIGTERM received: the training jobs finish their step and save a checkpoint", stopped.Stderr);
        Assert.Contains("snce: study stopped by SIGTERM", stopped.Stderr);
        Assert.Contains("the parent process asks to stop (SIGTERM): stopping after this step and saving a checkpoint", TokLog());
        Assert.Contains("# exit 143 (asked to stop)", TokLog());
        var stoppedAt = Snce.Tokenizer.TokenizerCheckpoint.LoadState(dir["study/tokenizers/64"])!.Step;
        Assert.InRange(stoppedAt, 1, 29);                                      // saved part-way (--checkpoint-every 0: only the stop saves)
        Assert.False(File.Exists(dir["study/classifier.json"]));                // nothing started after the stop
        Assert.False(File.Exists(Snce.IO.FolderLock.LockFileOf(dir["study"]) + ".owner"));

        var r = CliRunner.RunProcess(env, args);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        Assert.Contains($"resuming at step {stoppedAt}", TokLog());
        Assert.Equal(30, Snce.Tokenizer.TokenizerCheckpoint.LoadState(dir["study/tokenizers/64"])!.Step);
        Assert.Contains("## CE vs SNCE", r.Stdout);
        foreach (var run in new[] { "ar-ce-K64-s0", "ar-snce-K64-s0" })
        {
            var evals = File.ReadLines(dir[$"study/runs/{run}/metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("split", out var s) && s.GetString() == "eval").Select(e => e.GetProperty("step").GetInt64()).ToList();
            Assert.Equal([10, 20], evals);
            Assert.True(File.Exists(dir[$"study/samples/{run}.png"]));
            // The recipe reached the trainer, and the best checkpoint by FD is one of the evaluated steps, the lower FD of the two.
            using var manifest = JsonDocument.Parse(File.ReadAllText(dir[$"study/runs/{run}/checkpoint/checkpoint.json"]));
            Assert.Equal(0.1, manifest.RootElement.GetProperty("model").GetProperty("transformer").GetProperty("dropout").GetDouble());
            Assert.Equal(2e-3, manifest.RootElement.GetProperty("training").GetProperty("lr").GetDouble());
            Assert.Equal(2, manifest.RootElement.GetProperty("training").GetProperty("warmup_steps").GetInt64());
            var fds = File.ReadLines(dir[$"study/runs/{run}/metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("fd", out _)).Select(e => (Step: e.GetProperty("step").GetInt64(), Fd: e.GetProperty("fd").GetDouble())).ToList();
            var best = Snce.Training.BestCheckpoint.Read(dir[$"study/runs/{run}"])!;
            Assert.Equal(fds.MinBy(f => f.Fd).Step, best.Step);
            Assert.Equal(fds.Min(f => f.Fd), best.Value, 1e-6 * best.Value);                // metrics.jsonl rounds to 9 significant digits
            foreach (var which in new[] { "last", "best" })
            {
                using var final = JsonDocument.Parse(File.ReadAllText(dir[$"study/runs/{run}/final-{which}.json"]));
                Assert.Equal(30, final.RootElement.GetProperty("n").GetInt32());
                Assert.Equal(which == "last" ? 20 : best.Step, final.RootElement.GetProperty("step").GetInt64());
            }
        }
        // The codebook-embedding arm trained with --init-embeddings codebook (the main cells with the random init) and was evaluated.
        foreach (var (run, init) in new[] { ("ar-ce-cbemb-K64-s0", "codebook"), ("ar-snce-cbemb-K64-s0", "codebook"), ("ar-ce-K64-s0", null) })
        {
            using var manifest = JsonDocument.Parse(File.ReadAllText(dir[$"study/runs/{run}/checkpoint/checkpoint.json"]));
            var model = manifest.RootElement.GetProperty("model");
            Assert.Equal(init, model.TryGetProperty("embedding_init", out var e) ? e.GetString() : null);
            Assert.True(File.Exists(dir[$"study/runs/{run}/final-last.json"]), run);
        }
        var md = File.ReadAllText(dir["study/STUDY.md"]);
        Assert.Contains("| autoregressive | 64 |", md);
        Assert.True(File.Exists(dir["study/report/report.md"]));
        using var json = JsonDocument.Parse(File.ReadAllText(dir["study/study.json"]));
        Assert.All(json.RootElement.GetProperty("jobs").EnumerateArray(), j => Assert.True(j.GetProperty("Ok").GetBoolean(), j.ToString()));

        var again = CliRunner.RunProcess(env, args);
        Assert.True(again.ExitCode == 0, again.Stderr);
        using var json2 = JsonDocument.Parse(File.ReadAllText(dir["study/study.json"]));
        var jobs = json2.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("Name").GetString()).ToList();
        Assert.Equal(["report: report"], jobs); // everything else was already done
    }

    /// <summary>Reads a log that a running process may still be appending to.</summary>
    static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(stream).ReadToEnd();
    }

    [Fact]
    public void BadStudyOptionsFailWithTheReason()
    {
        var r = CliRunner.Run("study", "--losses", "snce", "--device", "cpu", "--out", "/tmp/never-used");
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("must include ce", r.Stderr);
    }
}
