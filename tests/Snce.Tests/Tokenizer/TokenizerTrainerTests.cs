using Snce.Tests.Support;
using Snce.Tokenizer;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Tokenizer;

public class TokenizerTrainerTests : SingleThreadTests
{
    [Theory]
    [InlineData(QuantizerKind.Ibq, "dot")]
    [InlineData(QuantizerKind.Ema, "cosine")]
    public void CheckpointRebuildsAnIdenticalModel(QuantizerKind kind, string metric)
    {
        using var dir = new TempDir();
        using var images = TokenizerTestModels.TrainImages();
        using var trainer = TokenizerTrainer.Create(TokenizerTestModels.Micro(kind, metric), TokenizerTestModels.FewSteps(2), CPU);
        trainer.Train(images, "mnist-sample");                             // EMA buffers and usage counters move too
        trainer.SaveCheckpoint(dir["tok"], "mnist-sample");
        using var loaded = TokenizerCheckpoint.Load(dir["tok"]);
        Assert.Equal(trainer.Model.Config, loaded.Config);
        using var scope = NewDisposeScope();
        var expected = trainer.Model.state_dict();
        foreach (var (name, t) in loaded.state_dict())
            Assert.True(t.eq(expected[name]).all().item<bool>(), $"{name} differs after the round trip");
        trainer.Model.eval();
        var x = Snce.Data.ImageDataset.ToModelRange(images.narrow(0, 0, 6));
        Assert.True(loaded.Tokenize(x).eq(trainer.Model.Tokenize(x)).all().item<bool>());
        using (no_grad())
            Assert.True(loaded.forward(x, null).Reconstruction.eq(trainer.Model.forward(x, null).Reconstruction).all().item<bool>());
    }

    [Fact]
    public void ResumeContinuesExactlyWhereTheRunStopped()
    {
        using var dir = new TempDir();
        using var images = TokenizerTestModels.TrainImages();
        var config = TokenizerTestModels.Micro(QuantizerKind.Ibq, "dot");
        var options = TokenizerTestModels.FewSteps(4);
        Dictionary<string, Tensor> straight;
        using (var a = TokenizerTrainer.Create(config, options, CPU))
        {
            a.Train(images, "mnist-sample");
            straight = TokenizerTestModels.Snapshot(a.Model);
        }
        using (var b = TokenizerTrainer.Create(config, options, CPU))
        {
            var first = b.Train(images, "mnist-sample", dir["tok"], limits: new RunLimits(MaxSteps: 2));
            Assert.Equal((1L, 2L), (first.FirstStep, first.LastStep));
        }
        Assert.Equal(2L, TokenizerCheckpoint.LoadState(dir["tok"])!.Step);
        using var resumed = TokenizerTrainer.Resume(dir["tok"], CPU);
        Assert.Equal(2L, resumed.Step);
        var second = resumed.Train(images, "mnist-sample", dir["tok"]);
        Assert.Equal((3L, 4L), (second.FirstStep, second.LastStep));
        Assert.Equal(4L, TokenizerCheckpoint.LoadState(dir["tok"])!.Step);
        foreach (var (name, t) in resumed.Model.state_dict())
            Assert.True(t.allclose(straight[name], rtol: 1e-5, atol: 1e-6), $"{name}: 2 + 2 resumed steps differ from 4 straight steps");
        foreach (var t in straight.Values) t.Dispose();
    }

    /// <summary>An EMA tokenizer whose unused codes restart after 2 steps: every step from the third draws restart picks and noise.</summary>
    static TokenizerConfig Restarting() => TokenizerTestModels.Micro(QuantizerKind.Ema) with { RestartMinSteps = 1 };

    static void AssertIdentical(Dictionary<string, Tensor> expected, VqTokenizer model, string what)
    {
        foreach (var (name, t) in model.state_dict())
            Assert.True(t.Equals(expected[name]), $"{name}: {what} (max |Δ| = {(t.to_type(ScalarType.Float64) - expected[name].to_type(ScalarType.Float64)).abs().max().item<double>()})");
    }

    [Theory]
    [InlineData(QuantizerKind.Ibq)]
    [InlineData(QuantizerKind.Ema)]
    public void ResumeIsBitExact(QuantizerKind kind)
    {
        using var dir = new TempDir();
        using var images = TokenizerTestModels.TrainImages();
        var config = kind == QuantizerKind.Ema ? Restarting() : TokenizerTestModels.Micro(kind, "dot");
        var options = TokenizerTestModels.FewSteps(6);
        Dictionary<string, Tensor> straight;
        using (var a = TokenizerTrainer.Create(config, options, CPU))
        {
            a.Train(images, "mnist-sample");
            straight = TokenizerTestModels.Snapshot(a.Model);
        }
        using (var b = TokenizerTrainer.Create(config, options, CPU)) b.Train(images, "mnist-sample", dir["tok"], limits: new RunLimits(MaxSteps: 3));
        manual_seed(12345); using (rand(1000)) { }                         // draws in between (another run, sampling) must not matter
        using var expected = rand(16);
        manual_seed(12345); using (rand(1000)) { }
        using var resumed = TokenizerTrainer.Resume(dir["tok"], CPU);
        resumed.Train(images, "mnist-sample", dir["tok"]);
        using (var after = rand(16)) Assert.True(after.Equals(expected), "resuming and training moved the caller's CPU random stream");
        AssertIdentical(straight, resumed.Model, "3 + 3 resumed steps differ from 6 straight steps");
        if (kind == QuantizerKind.Ema)                                     // the restart noise was drawn after the resume
            Assert.True(straight.Single(kv => kv.Key.EndsWith("restarted_at")).Value.max().item<long>() > 3, "no code restarted after step 3");
        foreach (var t in straight.Values) t.Dispose();
    }

    /// <summary>
    /// Two runs interleaved step by step in one process train exactly as each does alone (each step's draws are the
    /// run's own, made on its device), and training leaves the caller's CPU random stream where it was.
    /// </summary>
    [Fact]
    public void InterleavedRunsEqualRunsAloneAndLeaveTheCallersStreamAlone()
    {
        using var images = TokenizerTestModels.TrainImages();
        var (config, steps) = (Restarting(), 5);
        var options = new[] { TokenizerTestModels.FewSteps(steps), TokenizerTestModels.FewSteps(steps) with { Seed = 6, LearningRate = 1e-3 } };
        var alone = options.Select(o =>
        {
            using var t = TokenizerTrainer.Create(config, o, CPU);
            t.Train(images, "mnist-sample");
            return TokenizerTestModels.Snapshot(t.Model);
        }).ToArray();

        manual_seed(42);
        using var expected = rand(16);                                      // what the caller's stream gives without training
        manual_seed(42);
        using var a = TokenizerTrainer.Create(config, options[0], CPU);
        using var b = TokenizerTrainer.Create(config, options[1], CPU);
        for (var step = 1; step <= steps; step++)
        {
            a.Train(images, "mnist-sample", limits: new RunLimits(MaxSteps: step));
            b.Train(images, "mnist-sample", limits: new RunLimits(MaxSteps: step));
        }
        using var after = rand(16);
        Assert.True(after.Equals(expected), "creating and training tokenizers moved the caller's CPU random stream");
        AssertIdentical(alone[0], a.Model, "run A interleaved with run B differs from A alone");
        AssertIdentical(alone[1], b.Model, "run B interleaved with run A differs from B alone");
        foreach (var t in alone.SelectMany(d => d.Values)) t.Dispose();
    }

    [Fact]
    public void StopsReportTheSharedStopReasonAndSaveACheckpoint()
    {
        using var dir = new TempDir();
        using var images = TokenizerTestModels.TrainImages();
        var options = TokenizerTestModels.FewSteps(5);
        using (var all = TokenizerTrainer.Create(TokenizerTestModels.Micro(), options, CPU))
            Assert.Equal(Snce.Training.StopReason.Completed, all.Train(images, "mnist-sample").Stop);
        // A time limit shorter than one step stops after the first, as the generator trainer's --time-limit does.
        using (var timed = TokenizerTrainer.Create(TokenizerTestModels.Micro(), options, CPU))
        {
            var s = timed.Train(images, "mnist-sample", dir["timed"], limits: new RunLimits(TimeLimit: TimeSpan.FromTicks(1)));
            Assert.Equal((Snce.Training.StopReason.TimeLimit, 1L), (s.Stop, s.LastStep));
            Assert.Equal(1L, TokenizerCheckpoint.LoadState(dir["timed"])!.Step);
        }
        // A step limit below the planned steps stops there with the generator trainer's reason, and saves.
        using (var capped = TokenizerTrainer.Create(TokenizerTestModels.Micro(), options, CPU))
        {
            var s = capped.Train(images, "mnist-sample", dir["capped"], limits: new RunLimits(MaxSteps: 2));
            Assert.Equal((Snce.Training.StopReason.MaxSteps, 2L), (s.Stop, s.LastStep));
            Assert.Equal(2L, TokenizerCheckpoint.LoadState(dir["capped"])!.Step);
            Assert.Equal((Snce.Training.StopReason.Completed, 5L), (capped.Train(images, "mnist-sample", limits: new RunLimits(MaxSteps: 9)).Stop, capped.Step));
        }
        using var cancelled = TokenizerTrainer.Create(TokenizerTestModels.Micro(), options, CPU);
        var c = cancelled.Train(images, "mnist-sample", dir["cancelled"], cancel: new CancellationToken(canceled: true));
        Assert.Equal((Snce.Training.StopReason.Cancelled, 1L), (c.Stop, c.LastStep));
        Assert.Equal(1L, TokenizerCheckpoint.LoadState(dir["cancelled"])!.Step);
        // 'snce tokenizer train --json' prints these names, as it did for the tokenizer's own enum before.
        Assert.Equal(["completed", "timelimit", "cancelled"],
            new[] { Snce.Training.StopReason.Completed, Snce.Training.StopReason.TimeLimit, Snce.Training.StopReason.Cancelled }.Select(r => r.ToString().ToLowerInvariant()));
    }

    [Fact]
    public void NonFiniteLossStopsNamingTheStepAndKeepsTheLastGoodCheckpoint()
    {
        using var dir = new TempDir();
        using var images = TokenizerTestModels.TrainImages();
        using var trainer = TokenizerTrainer.Create(TokenizerTestModels.Micro(), TokenizerTestModels.FewSteps(5) with { CheckpointEvery = 2, LogEvery = 2 }, CPU);
        trainer.Train(images, "mnist-sample", dir["tok"], limits: new RunLimits(MaxSteps: 2));
        using (no_grad()) trainer.Model.named_parameters().First(p => p.name.EndsWith("conv_in.weight")).parameter.fill_(float.NaN);
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Train(images, "mnist-sample", dir["tok"]));
        Assert.Equal(3L, e.Step);
        Assert.Equal(2L, e.LastCheckpointStep);
        Assert.Contains("step 3", e.Message);
        Assert.Equal(2L, TokenizerCheckpoint.LoadState(dir["tok"])!.Step);
        using var kept = TokenizerCheckpoint.Load(dir["tok"]);
        Assert.All(kept.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
    }

    [Fact]
    public void TrainingStepsLeakNoTensors()
    {
        using var images = TokenizerTestModels.TrainImages();
        foreach (var kind in new[] { QuantizerKind.Ibq, QuantizerKind.Ema })
        {
            using var trainer = TokenizerTrainer.Create(TokenizerTestModels.Micro(kind), TokenizerTestModels.FewSteps(100), CPU);
            LeakCheck.AssertNoLeak(() => trainer.Train(images, "mnist-sample", limits: new RunLimits(MaxSteps: trainer.Step + 1)), repeats: 3, what: $"{kind} training step");
        }
    }

    [Fact]
    public void LearningRateWarmsUpThenDecaysToTheFloor()
    {
        var o = new TokenizerTrainOptions { Steps = 1000, LearningRate = 1e-3, WarmupSteps = 100, MinLearningRateRatio = 0.1 };
        Assert.Equal(1e-5, o.LearningRateAt(1), 12);
        Assert.Equal(1e-3, o.LearningRateAt(100), 12);
        Assert.Equal(1e-4, o.LearningRateAt(1000), 12);
        Assert.Equal(2e-4, new TokenizerTrainOptions { Steps = 100, WarmupSteps = 100 }.LearningRateAt(4), 12); // warmup capped at Steps/5 = 20
    }
}
