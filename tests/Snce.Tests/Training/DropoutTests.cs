using System.Text.Json;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>Backbone dropout: active only in training, recorded in the config, and a resumed run stays bit-exact.</summary>
public class DropoutTests
{
    static TrainerSetup WithDropout(TrainerSetup s, double p) => s with { Model = s.Model with { Transformer = s.Model.Transformer with { Dropout = p } } };

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void AResumedRunWithDropoutEqualsAnUninterruptedRun(GeneratorKind kind)
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var cfg = GeneratorFixtures.Training(steps: 8) with { CheckpointEvery = 3 };
        using var whole = new Trainer(WithDropout(GeneratorFixtures.Setup(kind, shards, dir["whole"], cfg), 0.2));
        Assert.Equal(StopReason.Completed, whole.Run(new RunLimits()).Reason);

        using (var first = new Trainer(WithDropout(GeneratorFixtures.Setup(kind, shards, dir["split"], cfg), 0.2)))
            Assert.Equal(StopReason.MaxSteps, first.Run(new RunLimits(MaxSteps: 5)).Reason);
        // Draws in between (another run, sampling) must not matter: the trainer reseeds from (seed, step).
        manual_seed(12345); using (rand(1000)) { }
        using var resumed = new Trainer(WithDropout(GeneratorFixtures.Setup(kind, shards, dir["split"], cfg), 0.2));
        resumed.Restore(dir["split"]);
        Assert.Equal(StopReason.Completed, resumed.Run(new RunLimits()).Reason);

        Assert.True(resumed.Parameters.Master.Equals(whole.Parameters.Master), $"max |Δw| = {(resumed.Parameters.Master - whole.Parameters.Master).abs().max().item<float>()}");
        Assert.Equal(0.2, GeneratorCheckpoint.ReadManifest(dir["split"]).Model.Transformer.Dropout);
    }

    [Fact]
    public void DropoutChangesTrainingButNotValidation()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var cfg = GeneratorFixtures.Training(steps: 4);
        using var plain = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir["plain"], cfg));
        using var dropped = new Trainer(WithDropout(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir["drop"], cfg), 0.3));
        Assert.True(plain.Parameters.Master.Equals(dropped.Parameters.Master));        // same seed, same initial weights
        plain.Run(new RunLimits());
        dropped.Run(new RunLimits());
        Assert.False(plain.Parameters.Master.Equals(dropped.Parameters.Master));       // dropout acted on the updates

        // With equal weights, validation (eval mode) is the same with and without dropout, and repeatable.
        using (no_grad()) plain.Parameters.Master.copy_(dropped.Parameters.Master);
        plain.Parameters.SyncValuesFromMaster();
        var a = plain.Validate();
        var b = dropped.Validate();
        var c = dropped.Validate();
        Assert.Equal(a.HardCe, b.HardCe, 6);
        Assert.Equal(b.HardCe, c.HardCe);
    }

    [Fact]
    public void TrainModeDropsEvalModeDoesNot()
    {
        var config = GeneratorFixtures.Config(GeneratorKind.Masked);
        manual_seed(1);
        using var m = new TokenGenerator(config with { Transformer = config.Transformer with { Dropout = 0.5 } });
        using (no_grad()) m.OutputWeight.normal_(0, 0.5);                                   // the head starts at zero
        using var cond = tensor(new long[] { 0, 1 });
        using var tokens = randint(0, config.CodebookSize, [2, config.SequenceLength], dtype: ScalarType.Int64);
        using var _ = no_grad();
        m.eval();
        using var e1 = m.Forward(cond, tokens);
        using var e2 = m.Forward(cond, tokens);
        Assert.True(e1.Equals(e2));
        m.train();
        using var t1 = m.Forward(cond, tokens);
        Assert.True((t1 - e1).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void AManifestWrittenBeforeDropoutLoadsAsZero()
    {
        var json = JsonSerializer.Serialize(GeneratorPresets.Tiny, GeneratorCheckpoint.JsonOptions);
        Assert.Contains("\"dropout\"", json);
        var old = json.Replace(",\n  \"dropout\": 0", "", StringComparison.Ordinal);
        Assert.DoesNotContain("dropout", old);
        var loaded = JsonSerializer.Deserialize<TransformerConfig>(old, GeneratorCheckpoint.JsonOptions)!;
        Assert.Equal(0, loaded.Dropout);
        Assert.Equal(GeneratorPresets.Tiny, loaded);
    }

    [Fact]
    public void DropoutOfOneIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => (GeneratorPresets.Tiny with { Dropout = 1 }).Validate());
        Assert.Contains("dropout", e.Message);
    }
}
