using Snce.Cli;
using Snce.Tests.Support;

namespace Snce.Tests.Cli;

/// <summary><c>snce train --gpus N</c> and torchrun's variables: what is refused before anything trains.</summary>
public class DistributedCliTests
{
    static string[] Train(string tokens, string run, params string[] extra) =>
        ["train", "ar", "--tokens", tokens, "--preset", "tiny", "--steps", "2", "--out", run, .. extra];

    [Fact]
    public void EachRankRunsTheSameCommandWithoutGpus()
    {
        var tokens = SnceCli.Build().Parse(["train", "ar", "--gpus", "4", "--tokens", "t", "--gpus=2", "--batch", "8"]).Tokens.Select(t => t.Value).ToList();
        Assert.Equal(["train", "ar", "--tokens", "t", "--batch", "8"], TrainLauncher.WithoutGpus(tokens));
    }

    [Fact]
    public void GpusRefusesAnIndivisibleBatchAndMissingGpus()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var r = CliRunner.Run(Train(dir["tokens"], dir["r"], "--batch", "10", "--gpus", "4"));
        Assert.Equal(SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("--batch 10 (the global batch) does not divide among 4 processes", r.Stderr);
        // More GPUs than any machine here has: refused before a process starts (and no log folder is made).
        r = CliRunner.Run(Train(dir["tokens"], dir["r"], "--batch", "64", "--gpus", "64"));
        Assert.Equal(SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("--gpus 64 asks for 64 GPUs", r.Stderr);
        Assert.Contains("visible", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir["r"], TrainLauncher.LogFolder)));
        r = CliRunner.Run(Train(dir["tokens"], dir["r"], "--batch", "64", "--gpus", "2", "--device", "cpu"));
        Assert.Contains("leave out --device cpu", r.Stderr);
    }

    [Fact]
    public void GpusStartsRealRanksAndNamesTheOneThatFailed()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        // Two "visible GPUs" on a machine without any: the launcher starts two real snce ranks, which refuse the CPU.
        var r = CliRunner.RunProcess(new Dictionary<string, string> { ["CUDA_VISIBLE_DEVICES"] = "0,1" }, Train(dir["tokens"], dir["r"], "--batch", "16", "--gpus", "2"));
        Assert.Equal(SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("starting 2 ranks (GPUs 0,1)", r.Stderr);
        var failed = System.Text.RegularExpressions.Regex.Match(r.Stderr, @"rank ([01]) of 2 exited with code 1, so the other ranks were stopped\. Last \d+ lines of .*rank-([01])\.log");
        Assert.True(failed.Success, r.Stderr);
        Assert.Equal(failed.Groups[1].Value, failed.Groups[2].Value);
        // The named rank's log holds its refusal; the other rank may have been stopped before it wrote anything.
        Assert.Contains("WORLD_SIZE=2 asks for data-parallel training through NCCL", File.ReadAllText(Path.Combine(dir["r"], TrainLauncher.LogFolder, $"rank-{failed.Groups[1].Value}.log")));
    }

    [Fact]
    public void GpusRefusesAFolderInUseBeforeTouchingItsLogs()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        using var held = Snce.IO.FolderLock.Acquire(dir["r"], "a test holding the run folder");
        var r = CliRunner.RunProcess(new Dictionary<string, string> { ["CUDA_VISIBLE_DEVICES"] = "0,1" }, Train(dir["tokens"], dir["r"], "--batch", "16", "--gpus", "2"));
        Assert.Equal(SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("is in use by another process", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir["r"], TrainLauncher.LogFolder)));
    }

    [Fact]
    public void WorldSizeAboveOneIsRefusedOnTheCpu()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var env = new Dictionary<string, string> { ["WORLD_SIZE"] = "2", ["RANK"] = "0", ["LOCAL_RANK"] = "0", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = "29500" };
        var r = CliRunner.RunProcess(env, Train(dir["tokens"], dir["r"], "--batch", "16", "--device", "cpu"));
        Assert.Equal(SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("WORLD_SIZE=2 asks for data-parallel training through NCCL, which runs on CUDA GPUs only", r.Stderr);
        Assert.False(File.Exists(Path.Combine(dir["r"], "checkpoint", "checkpoint.json")));
        r = CliRunner.RunProcess(env, Train(dir["tokens"], dir["r"], "--batch", "15", "--device", "cpu"));
        Assert.Contains("--batch 15 (the global batch) does not divide among 2 processes", r.Stderr);
    }
}
