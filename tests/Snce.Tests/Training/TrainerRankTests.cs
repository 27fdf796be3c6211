using Snce.Losses;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>Only rank 0 writes the run folder; every rank reads its share of the global batch.</summary>
public class TrainerRankTests
{
    /// <summary>One rank of a world whose collectives do nothing (each rank keeps its own numbers).</summary>
    sealed class FakeRank(int rank, int world) : IGradientSync
    {
        public int Rank => rank;
        public int WorldSize => world;
        public void AfterBackward(Tensor flatGrads) { }
        public void AverageMetric(Tensor scalar) { }
        public void BroadcastFromRank0(Tensor values) { }
    }

    [Fact]
    public void RankOneWritesNothingAndRankZeroWritesTheRun()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var training = GeneratorFixtures.Training(steps: 12, batch: 16) with { CheckpointEvery = 5, ValidateEvery = 5 };
        foreach (var (rank, run) in new[] { (1, "rank1"), (0, "rank0") })
        {
            using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir[run], training) with { Sync = new FakeRank(rank, 2) });
            Assert.Equal(8, trainer.LocalBatch);                                      // half of the global 16
            var result = trainer.Run(new RunLimits());
            Assert.Equal(StopReason.Completed, result.Reason);
            Assert.Equal(12, trainer.Step);
        }
        Assert.False(Directory.Exists(dir["rank1"]), $"rank 1 wrote {string.Join(", ", Directory.Exists(dir["rank1"]) ? Directory.GetFileSystemEntries(dir["rank1"]) : [])}");
        var folder = new RunFolder(dir["rank0"]);
        Assert.True(File.Exists(folder.Manifest));
        Assert.True(File.Exists(folder.Metrics));
        Assert.Contains("\"val\"", File.ReadAllText(folder.Metrics));              // rank 0 validates
        Assert.Equal(16, GeneratorCheckpoint.ReadManifest(dir["rank0"]).Training.Batch);   // the checkpoint records the global batch
    }

    [Fact]
    public void AnIndivisibleGlobalBatchIsRefusedByTheTrainer()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var e = Assert.Throws<ArgumentException>(() => new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir["r"],
            GeneratorFixtures.Training(batch: 15)) with { Sync = new FakeRank(0, 2) }));
        Assert.Contains("--batch 15", e.Message);
        Assert.Contains("2 processes", e.Message);
    }

    [Fact]
    public void OnlyTheWriterSetsAStaleLogAside()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        Directory.CreateDirectory(dir["run"]);
        File.WriteAllText(Path.Combine(dir["run"], RunFolder.MetricsFileName), "{\"step\": 10, \"split\": \"train\", \"loss\": 1.0}\n");
        var run = new NewRun(GeneratorKind.Autoregressive, dir["tokens"], "tiny", new LossSpec(), GeneratorFixtures.Training(), dir["run"]);
        using (RunSetup.New(run, CPU, writesRunFolder: false)) { }
        Assert.Equal([Path.Combine(dir["run"], RunFolder.MetricsFileName)], Directory.GetFileSystemEntries(dir["run"]));
        using (var writer = RunSetup.New(run, CPU)) Assert.Contains(writer.Notes, n => n.Contains("metrics.jsonl.stale"));
        Assert.False(File.Exists(Path.Combine(dir["run"], RunFolder.MetricsFileName)));
    }
}
