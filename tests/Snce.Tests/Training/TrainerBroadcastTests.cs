using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>The trainer takes rank 0's weights through <see cref="IGradientSync.BroadcastFromRank0"/> before anything reads them.</summary>
public class TrainerBroadcastTests
{
    /// <summary>A world of one whose "rank 0" has weights of 0.25 everywhere.</summary>
    sealed class FakeRankZero : IGradientSync
    {
        public int Calls;
        public int Rank => 0;
        public int WorldSize => 1;
        public void AfterBackward(Tensor flatGrads) { }
        public void AverageMetric(Tensor scalar) { }
        public void BroadcastFromRank0(Tensor values) { Calls++; values.fill_(0.25); }
    }

    [Theory]
    [InlineData(Precision.Fp32)]
    [InlineData(Precision.Bf16)]
    public void ParametersMasterAndEmaAreRankZeros(Precision precision)
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var sync = new FakeRankZero();
        using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir.Path,
            GeneratorFixtures.Training(steps: 1) with { Precision = precision }) with { Sync = sync });
        using var scope = NewDisposeScope();
        Assert.Equal(1, sync.Calls);
        Assert.Equal(ScalarType.Float32, trainer.Parameters.Master.dtype);
        Assert.True(trainer.Parameters.Master.eq(0.25).all().item<bool>());
        Assert.True(trainer.EmaValues.eq(0.25).all().item<bool>());
        foreach (var (name, p) in trainer.Model.named_parameters())
            Assert.True(p.to_type(ScalarType.Float32).eq(0.25).all().item<bool>(), name);
    }
}
