using System.Text.Json.Nodes;
using Snce.IO;
using Snce.Tests.Support;
using Snce.Tests.Text;
using Snce.Tokenizer;

namespace Snce.Tests.Cli;

/// <summary>
/// Issue #17: SIGINT, SIGTERM and SIGHUP to every long verb finish the current step, save what can be resumed, release
/// the folder lock and exit with 128 + the signal number; a run stopped that way resumes where it stopped. Real
/// processes (a signal cannot reach an in-process run), each signalled once it is seen training.
/// </summary>
public class StopSignalTests
{
    static string[] Train(string tokens, string run, params string[] extra) =>
        ["train", "ar", "--tokens", tokens, "--preset", "tiny", "--batch", "16", "--log-every", "1",
         "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", run, .. extra];

    static List<long> TrainSteps(string log) => File.ReadAllLines(log).Select(l => JsonNode.Parse(l)!)
        .Where(r => (string?)r["split"] == "train").Select(r => (long)r["step"]!).ToList();

    static void AssertUnlocked(string dir) => Assert.False(File.Exists(FolderLock.LockFileOf(dir) + ".owner"), $"the lock of {dir} was not released");

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    [InlineData("HUP", 129)]
    public async Task TrainFinishesTheStepSavesExitsWithTheSignalsCodeAndResumes(string signal, int code)
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var log = Path.Combine(dir["run"], "metrics.jsonl");
        CliRunner.Result r;
        using (var p = CliProcess.Start(null, Train(dir["tokens"], dir["run"], "--steps", "100000", "--checkpoint-every", "100000")))
        {
            await p.WaitUntil(() => File.Exists(log), "the first logged step");
            p.Signal(signal);
            r = await p.ExitAsync();
        }
        Assert.True(code == r.ExitCode, $"exit {r.ExitCode}, expected {code}; stderr:\n{r.Stderr}");
        Assert.Contains($"SIG{signal} received: stopping after this step and saving a checkpoint", r.Stderr);
        Assert.Contains("checkpoint saved, continue with --resume", r.Stdout);
        var step = (long)JsonNode.Parse(File.ReadAllText(Path.Combine(dir["run"], "checkpoint", "checkpoint.json")))!["state"]!["step"]!;
        Assert.InRange(step, 1, 99_999);
        Assert.Equal(Enumerable.Range(1, (int)step).Select(i => (long)i), TrainSteps(log));       // every step it trained is logged once, and saved
        AssertUnlocked(dir["run"]);

        var more = CliRunner.Run("train", "--resume", dir["run"], "--max-steps", (step + 2).ToString(), "--device", "cpu");
        Assert.True(more.ExitCode == 0, more.Stderr);
        Assert.Contains($"at step {step} of 100000", more.Stdout);
        Assert.Equal(Enumerable.Range(1, (int)step + 2).Select(i => (long)i), TrainSteps(log));
    }

    /// <summary>
    /// A job of a study (SNCE_STOP_FROM_PARENT=1) takes a line on its standard input as the study's stop request, and the
    /// end of its input (the study died, even by kill -9) as a lost terminal: it finishes the step, saves and exits 129.
    /// </summary>
    [Theory]
    [InlineData(null, 129, "the parent process ended")]
    [InlineData("SIGINT", 130, "the parent process asks to stop (SIGINT)")]
    public async Task AStudyJobStopsOnItsParentsRequestOrWhenItsParentIsGone(string? line, int code, string message)
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var log = Path.Combine(dir["run"], "metrics.jsonl");
        CliRunner.Result r;
        var env = new Dictionary<string, string> { [Snce.Cli.StopSignals.ParentPipeVariable] = "1" };
        using (var p = CliProcess.Start(env, pipeInput: true, Train(dir["tokens"], dir["run"], "--steps", "100000", "--checkpoint-every", "100000")))
        {
            await p.WaitUntil(() => File.Exists(log), "the first logged step");
            if (line is not null) p.Input.WriteLine(line);
            p.Input.Close();
            r = await p.ExitAsync();
        }
        Assert.True(code == r.ExitCode, $"exit {r.ExitCode}, expected {code}; stderr:\n{r.Stderr}");
        Assert.Contains($"{message}: stopping after this step and saving a checkpoint", r.Stderr);
        var step = (long)JsonNode.Parse(File.ReadAllText(Path.Combine(dir["run"], "checkpoint", "checkpoint.json")))!["state"]!["step"]!;
        Assert.Equal(Enumerable.Range(1, (int)step).Select(i => (long)i), TrainSteps(log));
        AssertUnlocked(dir["run"]);
    }

    [Theory]
    [InlineData("TERM", 143)]
    [InlineData("INT", 130)]
    public async Task TokenizerTrainFinishesTheStepSavesExitsWithTheSignalsCodeAndResumes(string signal, int code)
    {
        using var dir = new TempDir();
        string[] common = ["tokenizer", "train", "--data", MnistSample.Dir, "--preset", "tiny", "--codebook", "16", "--batch", "8", "--log-every", "1",
            "--checkpoint-every", "0", "--device", "cpu", "--out", dir["tok"]];
        CliRunner.Result r;
        using (var p = CliProcess.Start(null, [.. common, "--steps", "100000"]))
        {
            await p.WaitUntil(() => p.Stderr.Contains("train ["), "the first training step");
            p.Signal(signal);
            r = await p.ExitAsync();
        }
        Assert.True(code == r.ExitCode, $"exit {r.ExitCode}, expected {code}; stderr:\n{r.Stderr}");
        Assert.Contains($"SIG{signal} received: stopping after this step and saving a checkpoint", r.Stderr);
        Assert.Contains("(cancelled)", r.Stdout);
        var step = TokenizerCheckpoint.LoadState(dir["tok"])!.Step;                // --checkpoint-every 0: this checkpoint is the stop's
        Assert.InRange(step, 1, 99_999);
        AssertUnlocked(dir["tok"]);

        var more = CliRunner.Run([.. common, "--steps", (step + 2).ToString(), "--resume"]);
        Assert.True(more.ExitCode == 0, more.Stderr);
        Assert.Contains($"resuming at step {step}", more.Stderr);
        Assert.Equal(step + 2, TokenizerCheckpoint.LoadState(dir["tok"])!.Step);
    }

    [Fact]
    public async Task ClassifierTrainStopsAfterTheStepWritesNothingAndExits143()
    {
        using var dir = new TempDir();
        await StopsAfterTheStepAndWritesNothing(dir["clf"], "classifier [", "a classifier",
            "classifier", "train", "--data", MnistSample.Dir, "--steps", "100000", "--batch", "8", "--width", "4", "--device", "cpu", "--out", dir["clf"]);
    }

    [Fact]
    public async Task EvaluatorTrainStopsAfterTheStepWritesNothingAndExits143()
    {
        using var dir = new TempDir();
        TextToImageCliTests.CaptionedFolder(dir["images"]);
        await StopsAfterTheStepAndWritesNothing(dir["evaluator"], "evaluator [", "an evaluator",
            "evaluator", "train", "--data", dir["images"], "--channels", "1", "--size", "16", "--steps", "100000",
            "--batch", "16", "--width", "8", "--device", "cpu", "--out", dir["evaluator"]);
    }

    /// <summary>
    /// SIGTERM once <paramref name="progress"/> shows on stderr (the first step): a verb that saves nothing part-way
    /// (<paramref name="what"/> names it in the message) exits 143, writes no <paramref name="outDir"/> and leaves it unlocked.
    /// </summary>
    static async Task StopsAfterTheStepAndWritesNothing(string outDir, string progress, string what, params string[] args)
    {
        CliRunner.Result r;
        using (var p = CliProcess.Start(null, args))
        {
            await p.WaitUntil(() => p.Stderr.Contains(progress), "the first training step");
            p.Signal("TERM");
            r = await p.ExitAsync();
        }
        Assert.True(r.ExitCode == 143, $"exit {r.ExitCode}; stderr:\n{r.Stderr}");
        Assert.Contains($"SIGTERM received: stopping after this step; {what} trained part-way is not saved", r.Stderr);
        Assert.Matches(@"snce: stopped at step [1-9]\d* of 100000; nothing was written", r.Stderr);
        Assert.False(Directory.Exists(outDir));
        AssertUnlocked(outDir);
    }
}
