using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>
/// Every random draw of a generator run is the run's own (initialization, batch order, masking, CFG dropout, backbone
/// dropout): two runs interleaved step by step in one process train exactly as each does alone, and a run leaves the
/// caller's CPU random stream where it was; only the masked objective's mask ratios come from the trainer's CPU
/// generator, the rest is drawn on the device. (Resume is covered by TrainerTests and DropoutTests.)
/// </summary>
public class TrainerRandomnessTests
{
    /// <summary>The shared tiny setup with backbone dropout (the masked kind adds masking and CFG dropout draws).</summary>
    static TrainerSetup Setup(GeneratorKind kind, Snce.Data.TokenShards shards, string dir, long seed)
    {
        var s = GeneratorFixtures.Setup(kind, shards, dir, GeneratorFixtures.Training(steps: 6) with { Seed = seed });
        return s with { Model = s.Model with { Transformer = s.Model.Transformer with { Dropout = 0.2 } } };
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void InterleavedRunsEqualRunsAloneAndLeaveTheCallersStreamAlone(GeneratorKind kind)
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        const int steps = 6;
        var alone = new[] { 3L, 4L }.Select(seed =>
        {
            using var t = new Trainer(Setup(kind, shards, dir[$"alone{seed}"], seed));
            for (var i = 0; i < steps; i++) t.TrainStep();
            return t.Parameters.Master.clone();
        }).ToArray();
        Assert.False(alone[0].Equals(alone[1]));                            // the seeds make different runs

        manual_seed(42);
        using var expected = rand(16);                                      // what the caller's stream gives without training
        manual_seed(42);
        using var a = new Trainer(Setup(kind, shards, dir["a"], 3));
        using var b = new Trainer(Setup(kind, shards, dir["b"], 4));
        for (var i = 0; i < steps; i++)
        {
            a.TrainStep();
            b.TrainStep();
        }
        using var after = rand(16);
        Assert.True(after.Equals(expected), "building and training generators moved the caller's CPU random stream");
        Assert.True(a.Parameters.Master.Equals(alone[0]), $"run A interleaved differs from A alone: max |Δw| = {(a.Parameters.Master - alone[0]).abs().max().item<float>()}");
        Assert.True(b.Parameters.Master.Equals(alone[1]), $"run B interleaved differs from B alone: max |Δw| = {(b.Parameters.Master - alone[1]).abs().max().item<float>()}");
        foreach (var t in alone) t.Dispose();
    }

    /// <summary>
    /// The trainer's CPU generator (saved in the checkpoint) serves only the draws the host must know: after 4 steps its
    /// state is a fresh generator's advanced by 4 × B uniforms for the masked kind (r per sequence) and untouched for AR.
    /// Masked positions, CFG dropout (on at 0.1 here) and backbone dropout all come from the device's seeded default
    /// generator; before, they advanced this generator too.
    /// </summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive, 0)]
    [InlineData(GeneratorKind.Masked, 4)]
    public void TheCpuGeneratorDrawsOnlyTheMaskRatios(GeneratorKind kind, int draws)
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var setup = Setup(kind, shards, dir["run"], 3);
        Assert.True(setup.Training.Objective.CfgDropout > 0, "CFG dropout must be on for this test to say something");
        using var t = new Trainer(setup);
        for (var i = 0; i < 4; i++) t.TrainStep();
        t.Save();
        using var saved = GeneratorCheckpoint.LoadTensors(t.CheckpointDir);
        using var g = new Generator((ulong)setup.Training.Seed + 1);
        for (var i = 0; i < draws; i++) rand([setup.Training.Batch], generator: g).Dispose();
        using var expected = g.get_state();
        Assert.True(saved.GeneratorState.Equals(expected), $"the CPU generator advanced by something other than {draws} × B mask ratios");
    }
}
