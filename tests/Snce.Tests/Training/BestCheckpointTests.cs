using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;

namespace Snce.Tests.Training;

public class BestCheckpointTests
{
    [Fact]
    public void TheBestCopyFollowsTheLowestValueAndKeepsItsWeights()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var cfg = GeneratorFixtures.Training(steps: 6);
        using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir["run"], cfg));
        var values = new[] { 5.0, 3.0, 4.0 };                              // evaluation points at steps 2, 4, 6: the best is step 4
        for (var i = 0; i < values.Length; i++)
        {
            trainer.Run(new RunLimits(MaxSteps: 2 * (i + 1)));
            var kept = BestCheckpoint.Offer(dir["run"], BestRule.Fd, trainer.Step, values[i]);
            Assert.Equal(i == 0 ? 2 : 4, kept.Step);
        }
        var record = BestCheckpoint.Read(dir["run"])!;
        Assert.Equal(new BestRecord("fd", 4, 3.0), record);
        Assert.Equal(4, GeneratorCheckpoint.ReadManifest(BestCheckpoint.FolderOf(dir["run"])).State.Step);
        Assert.Equal(6, GeneratorCheckpoint.ReadManifest(dir["run"]).State.Step);     // the last checkpoint is untouched
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(dir["run"], "checkpoint", "ema.safetensors")),
            File.ReadAllBytes(Path.Combine(BestCheckpoint.FolderOf(dir["run"]), "ema.safetensors")));
        var (model, _) = GeneratorCheckpoint.LoadModel(BestCheckpoint.FolderOf(dir["run"]), TorchSharp.torch.CPU);
        model.Dispose();

        Assert.Throws<ArgumentException>(() => BestCheckpoint.Offer(dir["run"], BestRule.ValCe, 6, 1.0));     // one rule per run
        Assert.Throws<InvalidOperationException>(() => BestCheckpoint.Offer(dir["run"], BestRule.Fd, 4, 1.0)); // the checkpoint is at 6
        Assert.Throws<ArgumentException>(() => BestCheckpoint.Offer(dir["run"], BestRule.Fd, 6, double.NaN));
        Assert.Throws<ArgumentException>(() => EnumNames<BestRule>.Parse("psnr"));
    }
}
