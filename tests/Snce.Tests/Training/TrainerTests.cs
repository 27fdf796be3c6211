using Snce.Data;
using Snce.Losses;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

public class TrainerTests
{
    static double FirstAndLastLoss(string metricsPath, out double last)
    {
        var train = File.ReadAllLines(metricsPath).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("split").GetString() == "train").Select(e => e.GetProperty("loss").GetDouble()).ToList();
        last = train[^1];
        return train[0];
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void LossFallsOnATinyTokenSet(GeneratorKind kind)
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        // The masked task starts slower (all-masked rows must route the class through attention first).
        var (steps, factor) = kind == GeneratorKind.Autoregressive ? (60, 0.6) : (80, 0.85);
        var setup = GeneratorFixtures.Setup(kind, shards, dir.Path, GeneratorFixtures.Training(steps: steps) with { ValidateEvery = steps });
        using var trainer = new Trainer(setup);
        var before = trainer.Validate();
        var result = trainer.Run(new RunLimits());
        var after = trainer.Validate();
        Assert.Equal(StopReason.Completed, result.Reason);
        var first = FirstAndLastLoss(Path.Combine(dir.Path, "metrics.jsonl"), out var last);
        Assert.True(last < factor * first, $"train loss {first:F3} → {last:F3}");
        Assert.True(after.HardCe < factor * before.HardCe, $"val CE {before.HardCe:F3} → {after.HardCe:F3}");
        Assert.True(after.Accuracy > before.Accuracy && after.Top5 >= after.Accuracy && after.Top5 <= 1);
        Assert.Equal(Math.Log(16), before.HardCe, 3);                  // the zero-initialized head predicts uniformly
        Assert.True(File.Exists(Path.Combine(dir.Path, "checkpoint", "checkpoint.json")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir.Path, "tb")));
        Assert.Contains("\"split\":\"val\"", File.ReadAllText(Path.Combine(dir.Path, "metrics.jsonl")));
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void AResumedRunEqualsAnUninterruptedRun(GeneratorKind kind)
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        // 4 train batches per epoch of 16 → the split crosses an epoch boundary.
        var cfg = GeneratorFixtures.Training(steps: 10) with { CheckpointEvery = 3 };

        using var whole = new Trainer(GeneratorFixtures.Setup(kind, shards, dir["whole"], cfg));
        Assert.Equal(StopReason.Completed, whole.Run(new RunLimits()).Reason);

        using (var first = new Trainer(GeneratorFixtures.Setup(kind, shards, dir["split"], cfg)))
        {
            var r = first.Run(new RunLimits(MaxSteps: 5));
            Assert.Equal(StopReason.MaxSteps, r.Reason);
            Assert.Equal(5, r.LastCheckpointStep);
        }
        using var resumed = new Trainer(GeneratorFixtures.Setup(kind, shards, dir["split"], cfg));
        resumed.Restore(dir["split"]);
        Assert.Equal(5, resumed.Step);
        Assert.Equal(StopReason.Completed, resumed.Run(new RunLimits()).Reason);

        Assert.True(resumed.Parameters.Master.Equals(whole.Parameters.Master), $"max |Δw| = {(resumed.Parameters.Master - whole.Parameters.Master).abs().max().item<float>()}");
        Assert.True(resumed.EmaValues.Equals(whole.EmaValues));
        var m = GeneratorCheckpoint.ReadManifest(dir["split"]);
        Assert.Equal(10, m.State.Step);
        Assert.Equal(kind, m.Model.Kind);
    }

    [Fact]
    public void NoTensorLeakOver20Steps()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Masked, shards, dir.Path, GeneratorFixtures.Training(steps: 100) with { Batch = 4 }));
        LeakCheck.AssertNoLeak(trainer.TrainStep, repeats: 20, what: "a training step");
        LeakCheck.AssertNoLeak(() => trainer.Validate(), repeats: 2, what: "validation");
    }

    sealed class NanAfter(int goodCalls) : ITokenLoss
    {
        readonly TestCrossEntropy ce = new();
        int calls;
        public string Name => "ce";
        public LossOutput Forward(Tensor logits, TokenTargets targets)
        {
            var o = ce.Forward(logits, targets);
            return ++calls > goodCalls ? o with { Loss = o.Loss * double.NaN } : o;
        }
    }

    [Fact]
    public void NonFiniteLossStopsNamingTheStepAndKeepsTheLastGoodCheckpoint()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        var cfg = GeneratorFixtures.Training(steps: 40) with { CheckpointEvery = 5, LogEvery = 4 };
        var setup = GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir.Path, cfg) with { CreateLoss = () => new NanAfter(7) };
        using var trainer = new Trainer(setup);
        var r = trainer.Run(new RunLimits());
        Assert.Equal(StopReason.NonFinite, r.Reason);
        Assert.Contains("step 8", r.Message);
        Assert.Contains("learning rate", r.Message);
        Assert.Equal(5, r.LastCheckpointStep);
        Assert.Equal(5, GeneratorCheckpoint.ReadManifest(dir.Path).State.Step);
    }

    [Fact]
    public void NonFiniteWeightsStopTheRunEvenWhenTheLossRefusesNanLogits()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        using var codebook = shards.Codebook.clone();
        var cfg = GeneratorFixtures.Training(steps: 40) with { CheckpointEvery = 3, LogEvery = 100 };
        var setup = GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir.Path, cfg) with
        {
            CreateLoss = () => LossFactory.Create(new LossSpec { Kind = LossKind.CrossEntropy }, codebook, Metric.L2),   // checks its logits
        };
        using var trainer = new Trainer(setup);
        Assert.Equal(StopReason.MaxSteps, trainer.Run(new RunLimits(MaxSteps: 4)).Reason);
        using (no_grad()) trainer.Parameters.Master.narrow(0, 0, 1).fill_(double.NaN);     // a bad update
        var r = trainer.Run(new RunLimits());
        Assert.Equal(StopReason.NonFinite, r.Reason);
        Assert.Contains("step 5", r.Message);
        Assert.Equal(4, r.LastCheckpointStep);
        Assert.Equal(4, GeneratorCheckpoint.ReadManifest(dir.Path).State.Step);
    }

    [Fact]
    public void CancellationFinishesTheStepAndSaves()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        using var cts = new CancellationTokenSource();
        using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir.Path, GeneratorFixtures.Training(steps: 50)));
        var r = trainer.Run(new RunLimits(), p => { if (p.Step == 3) cts.Cancel(); }, cts.Token);
        Assert.Equal(StopReason.Cancelled, r.Reason);
        Assert.Equal(3, GeneratorCheckpoint.ReadManifest(dir.Path).State.Step);
    }

    [Fact]
    public void Bf16KeepsFp32MasterWeightsAndTrains()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        using var trainer = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir.Path,
            GeneratorFixtures.Training(steps: 6) with { Precision = Precision.Bf16 }));
        Assert.True(trainer.Parameters.HasSeparateMaster);
        Assert.Equal(ScalarType.BFloat16, trainer.Model.WeightDtype);
        Assert.Equal(ScalarType.Float32, trainer.Parameters.Master.dtype);
        var r = trainer.Run(new RunLimits());
        Assert.Equal(StopReason.Completed, r.Reason);
        Assert.True(trainer.Parameters.Values.to_type(ScalarType.Float32).allclose(trainer.Parameters.Master, rtol: 1e-2, atol: 1e-3));
        var (model, _) = GeneratorCheckpoint.LoadModel(dir.Path, CPU, ema: false);
        using (model)
            Assert.True(model.named_parameters().First().parameter.dtype == ScalarType.Float32);
    }

    [Fact]
    public void RestoringAnotherModelFailsClearly()
    {
        using var dir = new TempDir();
        using var shards = GeneratorFixtures.Shards();
        using (var t = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, shards, dir.Path, GeneratorFixtures.Training(steps: 2))))
            t.Run(new RunLimits());
        using var other = GeneratorFixtures.Shards(k: 32);
        using var t2 = new Trainer(GeneratorFixtures.Setup(GeneratorKind.Autoregressive, other, dir["other"], GeneratorFixtures.Training(steps: 2)));
        var e = Assert.Throws<InvalidDataException>(() => t2.Restore(dir.Path));
        Assert.Contains("K = 16", e.Message);
        Assert.Contains("K = 32", e.Message);
    }

    [Fact]
    public void BatchOrderShardsByRankAndResumes()
    {
        using var scope = NewDisposeScope();
        var r0 = new BatchOrder(20, 3, seed: 1, CPU, rank: 0, world: 2);
        var r1 = new BatchOrder(20, 3, seed: 1, CPU, rank: 1, world: 2);
        Assert.Equal(3, r0.BatchesPerEpoch);
        var seen = new List<long>();
        for (var i = 0; i < 3; i++) { seen.AddRange(r0.Next().data<long>()); seen.AddRange(r1.Next().data<long>()); }
        Assert.Equal(18, seen.Distinct().Count());                      // one epoch: no example twice
        Assert.Equal((1L, 0L), (r0.Epoch, r0.Position));
        var next = r0.Next().data<long>().ToArray();
        var again = new BatchOrder(20, 3, seed: 1, CPU, rank: 0, world: 2);
        again.Restore(1, 0);
        Assert.Equal(next, again.Next().data<long>().ToArray());
        Assert.Contains("exceeds", Assert.Throws<ArgumentException>(() => new BatchOrder(5, 3, 1, CPU, 0, 2)).Message);
    }
}

public class RunSetupTests
{
    [Theory]
    [InlineData(GeneratorKind.Autoregressive, "snce", "latent")]
    [InlineData(GeneratorKind.Masked, "snce", "code")]
    [InlineData(GeneratorKind.Autoregressive, "stochastic", "latent")]
    [InlineData(GeneratorKind.Masked, "label-smoothing", "auto")]
    public void TrainsWithTheProductLosses(GeneratorKind kind, string loss, string anchor)
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(latents: true)) s.Save(dir["tokens"]);
        // Label smoothing reads an anchor only when matched to a perplexity, so it gets one here (auto resolves to latent for it too).
        var options = new LossSpec
        {
            Kind = EnumNames<LossKind>.Parse(loss), Perplexity = loss is "snce" or "label-smoothing" ? 3 : null,
            Anchor = anchor == "auto" ? null : EnumNames<NeighborAnchor>.Parse(anchor),
        };
        using var run = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", options, GeneratorFixtures.Training(steps: 4) with { ValidateEvery = 4 }, dir["run"]), CPU);
        using var trainer = new Trainer(run.Setup);
        var r = trainer.Run(new RunLimits());
        Assert.Equal(StopReason.Completed, r.Reason);
        var m = GeneratorCheckpoint.ReadManifest(dir["run"]);
        if (loss == "snce")
        {
            Assert.NotNull(run.Calibration);
            Assert.Equal(3, run.Calibration!.MeanPerplexity, 1);
            Assert.Equal(run.Setup.Loss.Tau, m.Loss.Tau);
            var v = trainer.Validate();
            Assert.NotNull(v.TargetEntropy);
            Assert.True(v.Loss > v.TargetEntropy);                       // SNCE = KL + H(q) ≥ H(q)
        }
        Assert.Equal(anchor == "auto" ? "latent" : anchor, m.Loss.Anchor?.Name());
    }

    /// <summary>
    /// --loss-implementation fused trains the same run as the reference to rounding: the same losses at every logged
    /// step and the same weights after 6 steps. The fused loss takes the hidden states and the head's weight (the logits
    /// are never formed in the step; for masked, the masked rows only); the CPU runs its libtorch backend, in row blocks.
    /// Validation (which forms the logits for accuracy and top-5) still lands in metrics.jsonl with the reference's numbers.
    /// </summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive, "ce", null)]
    [InlineData(GeneratorKind.Masked, "ce", null)]
    [InlineData(GeneratorKind.Masked, "snce", "latent")]
    [InlineData(GeneratorKind.Masked, "snce", "code")]
    [InlineData(GeneratorKind.Autoregressive, "snce", "latent")]
    [InlineData(GeneratorKind.Autoregressive, "snce", "code")]
    public void FusedImplementationTrainsLikeTheReference(GeneratorKind kind, string loss, string? anchor)
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(latents: true)) s.Save(dir["tokens"]);
        (List<double> Losses, Dictionary<string, double> Validation, Tensor Master) Train(string implementation)
        {
            var options = new LossSpec
            {
                Kind = EnumNames<LossKind>.Parse(loss), Perplexity = loss == "snce" ? 3 : null, Anchor = anchor is null ? null : EnumNames<NeighborAnchor>.Parse(anchor),
                Implementation = LossNames.ParseImplementation(implementation),
            };
            var training = GeneratorFixtures.Training(steps: 6) with { LogEvery = 1, ValidateEvery = 6 };
            using var run = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", options, training, dir[implementation]), CPU);
            using var trainer = new Trainer(run.Setup);
            Assert.Equal(StopReason.Completed, trainer.Run(new RunLimits()).Reason);
            var lines = File.ReadAllLines(Path.Combine(dir[implementation], "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
            var losses = lines.Where(e => e.GetProperty("split").GetString() == "train").Select(e => e.GetProperty("loss").GetDouble()).ToList();
            var val = lines.Single(e => e.GetProperty("split").GetString() == "val");
            var metrics = new[] { "loss", "hard_ce", "accuracy", "top5" }.ToDictionary(n => n, n => val.GetProperty(n).GetDouble());
            return (losses, metrics, trainer.Parameters.Master.clone());
        }
        var (refLosses, refVal, refW) = Train("reference");
        var (fusedLosses, fusedVal, fusedW) = Train("fused");
        using (refW) using (fusedW)
        {
            Assert.Equal(6, refLosses.Count);
            Assert.Equal(refLosses.Count, fusedLosses.Count);
            for (var i = 0; i < refLosses.Count; i++)
                Assert.True(Math.Abs(refLosses[i] - fusedLosses[i]) <= 1e-4 * Math.Max(1, Math.Abs(refLosses[i])), $"step {i + 1}: reference {refLosses[i]} vs fused {fusedLosses[i]}");
            var dw = (refW - fusedW).abs().max().item<float>();
            Assert.True(dw < 1e-4, $"max |Δw| after 6 steps = {dw}");
            Assert.True((refW - Train0(kind, dir)).abs().max().item<float>() > 1e-3, "the weights must move in 6 steps");
        }
        foreach (var (name, value) in refVal)
            Assert.True(Math.Abs(value - fusedVal[name]) <= 1e-4 * Math.Max(1, Math.Abs(value)), $"val {name}: reference {value} vs fused {fusedVal[name]}");
        Assert.InRange(fusedVal["top5"], fusedVal["accuracy"], 1);
        Assert.Equal("fused", GeneratorCheckpoint.ReadManifest(dir["fused"]).Loss.Implementation.Name());
    }

    /// <summary>The seeded initial weights of a tiny run (what the trainer starts from).</summary>
    static Tensor Train0(GeneratorKind kind, TempDir dir)
    {
        using var run = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", new LossSpec(), GeneratorFixtures.Training(steps: 1), dir["init"]), CPU);
        using var trainer = new Trainer(run.Setup);
        return trainer.Parameters.Master.clone();
    }

    /// <summary>The folded-head step (hidden states, gathered masked rows) and validation leave no tensor behind.</summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void NoTensorLeakWithTheFusedLoss(GeneratorKind kind)
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(latents: true)) s.Save(dir["tokens"]);
        var options = new LossSpec { Kind = LossKind.Snce, Perplexity = 3, Implementation = LossImplementation.Fused };
        using var run = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", options, GeneratorFixtures.Training(steps: 100) with { Batch = 4 }, dir["run"]), CPU);
        using var trainer = new Trainer(run.Setup);
        LeakCheck.AssertNoLeak(trainer.TrainStep, repeats: 20, what: "a fused training step");
        LeakCheck.AssertNoLeak(() => trainer.Validate(), repeats: 2, what: "validation");
    }

    /// <summary>A fused run stopped at step 3 and resumed ends bit-identical to one that ran its 6 steps straight through.</summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void AResumedFusedRunEqualsAnUninterruptedOne(GeneratorKind kind) =>
        AResumedRunEqualsAnUninterruptedOne(kind, new LossSpec { Kind = LossKind.Snce, Perplexity = 3, Implementation = LossImplementation.Fused });

    /// <summary>
    /// The stochastic loss draws its picks on the device from the step's seeded default generator (no CPU generator):
    /// stopped at step 3 and resumed, the run still ends bit-identical to one that ran straight through.
    /// </summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void AResumedStochasticRunEqualsAnUninterruptedOne(GeneratorKind kind) =>
        AResumedRunEqualsAnUninterruptedOne(kind, new LossSpec { Kind = LossKind.Stochastic, Alpha = 0.5, Delta = 4, Anchor = NeighborAnchor.Latent });

    static void AResumedRunEqualsAnUninterruptedOne(GeneratorKind kind, LossSpec options)
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(latents: true)) s.Save(dir["tokens"]);
        var training = GeneratorFixtures.Training(steps: 6) with { CheckpointEvery = 3, ValidateEvery = 0 };
        using var whole = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", options, training, dir["whole"]), CPU);
        using var wholeTrainer = new Trainer(whole.Setup);
        Assert.Equal(StopReason.Completed, wholeTrainer.Run(new RunLimits()).Reason);
        using (var first = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", options, training, dir["split"]), CPU))
        using (var firstTrainer = new Trainer(first.Setup))
            Assert.Equal(StopReason.MaxSteps, firstTrainer.Run(new RunLimits(MaxSteps: 3)).Reason);
        using var resumed = RunSetup.Resume(dir["split"], CPU);
        Assert.Equal(options.Implementation, resumed.Setup.Loss.Implementation);
        using var resumedTrainer = new Trainer(resumed.Setup);
        resumedTrainer.Restore(dir["split"]);
        Assert.Equal(3, resumedTrainer.Step);
        Assert.Equal(StopReason.Completed, resumedTrainer.Run(new RunLimits()).Reason);
        Assert.True(resumedTrainer.Parameters.Master.Equals(wholeTrainer.Parameters.Master),
            $"max |Δw| = {(resumedTrainer.Parameters.Master - wholeTrainer.Parameters.Master).abs().max().item<float>()}");
        Assert.True(resumedTrainer.EmaValues.Equals(wholeTrainer.EmaValues));
    }

    [Fact]
    public void FusedLabelSmoothingFailsBeforeTraining()
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(latents: true)) s.Save(dir["tokens"]);
        var options = new LossSpec { Kind = LossKind.LabelSmoothing, Implementation = LossImplementation.Fused };
        var e = Assert.Throws<NotSupportedException>(() =>
            RunSetup.New(new NewRun(GeneratorKind.Autoregressive, dir["tokens"], "tiny", options, GeneratorFixtures.Training(steps: 1), dir["run"]), CPU));
        Assert.Contains("no fused label-smoothing", e.Message);
        Assert.False(File.Exists(Path.Combine(dir["run"], "metrics.jsonl")));
    }

    [Fact]
    public void LabelSmoothingWithAPerplexityMatchesSnceOffTargetMass()
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(latents: true)) s.Save(dir["tokens"]);
        double Epsilon(double? perplexity, string name)
        {
            var options = new LossSpec { Kind = LossKind.LabelSmoothing, Perplexity = perplexity };
            using var run = RunSetup.New(new NewRun(GeneratorKind.Autoregressive, dir["tokens"], "tiny", options,
                GeneratorFixtures.Training(steps: 1), dir[name]), CPU);
            using var trainer = new Trainer(run.Setup);
            trainer.Run(new RunLimits());
            return GeneratorCheckpoint.ReadManifest(dir[name]).Loss.Epsilon!.Value;
        }
        Assert.Equal(0.1, Epsilon(null, "plain"));              // no perplexity: ε as given
        var e2 = Epsilon(2, "p2");
        var e6 = Epsilon(6, "p6");
        Assert.InRange(e2, 0.01, 0.99);
        Assert.True(e6 > e2, $"more neighbors must move more mass off the token: ε(6) = {e6}, ε(2) = {e2}");
    }
}
