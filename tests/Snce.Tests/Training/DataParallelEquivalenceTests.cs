using Snce.Models;
using Snce.Objectives;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>
/// Two ranks of a world of two (threads of this process, their collectives summing in rank order) take the same first
/// step as one process with the same global batch: each reads its half of the batch, and the averaged gradient and
/// logged loss are the 1-process ones (to rounding: two half-batch means averaged instead of one mean).
/// </summary>
public class DataParallelEquivalenceTests
{
    /// <summary>Collectives between threads: every rank posts its tensor, all read the rank-ordered sum, then all write.</summary>
    sealed class ThreadWorld(int size)
    {
        public readonly int Size = size;
        public readonly Barrier Barrier = new(size);
        public readonly Tensor?[] Slots = new Tensor?[size];
        public Tensor? Rank0Weights;
        public readonly ManualResetEventSlim Posted = new();
    }

    sealed class ThreadRank(ThreadWorld world, int rank) : IGradientSync
    {
        public int Rank => rank;
        public int WorldSize => world.Size;
        public void AfterBackward(Tensor flatGrads) => Average(flatGrads);
        public void AverageMetric(Tensor scalar) => Average(scalar);

        /// <summary>Rank 0 posts its weights without waiting (the trainers are built one after the other); the others copy them.</summary>
        public void BroadcastFromRank0(Tensor values)
        {
            if (rank == 0) { world.Rank0Weights = values.clone().DetachFromDisposeScope(); world.Posted.Set(); }
            else { world.Posted.Wait(); values.copy_(world.Rank0Weights!); }
        }

        void Average(Tensor t)
        {
            world.Slots[rank] = t;
            world.Barrier.SignalAndWait();
            using var sum = world.Slots[0]!.clone();
            for (var r = 1; r < world.Size; r++) sum.add_(world.Slots[r]!);
            world.Barrier.SignalAndWait();                                          // everyone has read before anyone writes
            t.copy_(sum / world.Size);
        }
    }

    static void StepTogether(params Trainer[] ranks)
    {
        var threads = ranks.Select(t => new Thread(() => t.TrainStep())).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a rank did not finish its step");
    }

    static void AssertSameGradient(Trainer reference, Trainer rank0, Trainer rank1)
    {
        using var scope = NewDisposeScope();
        Assert.True(rank0.Parameters.Master.eq(rank1.Parameters.Master).all().item<bool>(), "the ranks' weights differ after the step");
        Assert.True(rank0.Parameters.Grads.eq(rank1.Parameters.Grads).all().item<bool>(), "the ranks' averaged gradients differ");
        var err = (rank0.Parameters.Grads - reference.Parameters.Grads).abs().max().item<float>();
        var scale = reference.Parameters.Grads.abs().max().item<float>();
        Assert.True(scale > 0);
        Assert.True(err <= 1e-5f * scale + 1e-7f, $"the averaged gradient is off the global batch's by {err} (max |g| {scale})");
    }

    /// <summary>
    /// A 1-process run's checkpoint resumed by two ranks: their next step is the 1-process run's next step (same global
    /// batch at the saved data position, same weights and optimizer state), so a run can change its GPU count.
    /// </summary>
    [Fact]
    public void TwoRanksResumeAOneProcessCheckpointAtItsNextGlobalBatch()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var training = GeneratorFixtures.Training(steps: 10, batch: 16) with { Objective = new ObjectiveOptions(CfgDropout: 0) };
        TrainerSetup Setup(string run) => GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir[run], training);

        using var single = new Trainer(Setup("single"));
        Assert.Equal(3, single.Run(new RunLimits(MaxSteps: 3)).LastCheckpointStep);   // saved at step 3 (batches 0..2 of epoch 0)
        single.TrainStep();                                                             // its step 4: the reference

        var world = new ThreadWorld(2);
        using var rank0 = new Trainer(Setup("rank0") with { Sync = new ThreadRank(world, 0) });
        using var rank1 = new Trainer(Setup("rank1") with { Sync = new ThreadRank(world, 1) });
        rank0.Restore(dir["single"]);
        rank1.Restore(dir["single"]);
        StepTogether(rank0, rank1);
        Assert.Equal(4, rank0.Step);
        AssertSameGradient(single, rank0, rank1);
    }

    [Fact]
    public void TwoRanksTakeTheOneProcessStepOfTheGlobalBatch()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        // No CFG dropout: the ranks' own random streams then draw nothing that changes the step.
        var training = GeneratorFixtures.Training(steps: 10, batch: 16) with { Objective = new ObjectiveOptions(CfgDropout: 0) };
        TrainerSetup Setup(string run) => GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir[run], training);

        using var single = new Trainer(Setup("single"));
        single.TrainStep();

        var world = new ThreadWorld(2);
        using var rank0 = new Trainer(Setup("rank0") with { Sync = new ThreadRank(world, 0) });
        using var rank1 = new Trainer(Setup("rank1") with { Sync = new ThreadRank(world, 1) });
        StepTogether(rank0, rank1);

        Assert.Equal(8, rank0.LocalBatch);
        AssertSameGradient(single, rank0, rank1);
        using var scope = NewDisposeScope();
        Assert.True(rank0.EmaValues.eq(rank1.EmaValues).all().item<bool>(), "the ranks' EMA differs");
        // (Checked: with both ranks reading rank 0's half, the gradient is off by 0.029 of a max |g| of 0.134.)
    }
}
