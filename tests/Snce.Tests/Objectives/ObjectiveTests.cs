using Snce.Losses;
using Snce.Models;
using Snce.Objectives;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Objectives;

public class ObjectiveTests
{
    sealed class Recorder : ITokenLoss
    {
        public TokenTargets? Last;
        public Tensor? Logits;
        public string Name => "recorder";
        public LossOutput Forward(Tensor logits, TokenTargets targets)
        {
            Last = new TokenTargets(targets.Tokens.clone().DetachFromDisposeScope(), null,
                targets.Mask?.clone().DetachFromDisposeScope(), targets.Weights?.clone().DetachFromDisposeScope()) { CheckValues = targets.CheckValues };
            Logits = logits.detach().clone().DetachFromDisposeScope();
            var z = logits.sum() * 0;
            return new LossOutput(z, z.detach(), null);
        }
    }

    [Fact]
    public void ScheduleClosedForms()
    {
        Assert.Equal(1, MaskScheduleKind.Cosine.MaskRatio(0.0), 12);
        Assert.Equal(Math.Sqrt(0.5), MaskScheduleKind.Cosine.MaskRatio(0.5), 12);
        Assert.Equal(0, MaskScheduleKind.Cosine.MaskRatio(1.0), 12);
        Assert.Equal(0.25, MaskScheduleKind.Linear.MaskRatio(0.75), 12);
        using var r = tensor(new[] { 0.0, 0.5, 0.9 });
        Assert.True(MaskScheduleKind.Linear.ElboWeight(r).allclose(tensor(new[] { 1.0, 2.0, 10.0 })));
        Assert.True(MaskScheduleKind.Cosine.ElboWeight(r).allclose(tensor(new[] { 0, Math.PI / 2, Math.PI / 2 * Math.Tan(0.45 * Math.PI) })));
        Assert.True(MaskScheduleKind.Cosine.MaskRatio(r).allclose(tensor(new[] { 1, Math.Sqrt(0.5), Math.Cos(0.45 * Math.PI) })));
    }

    [Fact]
    public void MaskedCorruptionMasksTheScheduledCountAndSupervisesOnlyMaskedPositions()
    {
        using var scope = NewDisposeScope();
        var obj = new MaskedObjective(new ObjectiveOptions(CfgDropout: 0));
        var tokens = randint(16, [32, 16], generator: new Generator(1));
        Tensor input, mask, r;
        using (DeviceRandom.SeededDefault(9, CPU)) (input, mask, r) = obj.Corrupt(tokens, 16, new Generator(2));
        var expected = (MaskScheduleKind.Cosine.MaskRatio(r) * 16).ceil().clamp(1, 16).to_type(ScalarType.Int64);
        Assert.True(mask.sum(1).Equals(expected));
        Assert.True((input == 16).Equals(mask));
        Assert.True(input.masked_select(mask.logical_not()).Equals(tokens.masked_select(mask.logical_not())));

        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Masked));
        var rec = new Recorder();
        ObjectiveOutput o;
        using (DeviceRandom.SeededDefault(9, CPU)) o = obj.Compute(m, new TokenBatch(tokens, zeros(32, dtype: ScalarType.Int64)), rec, new Generator(2), train: true);
        Assert.True(rec.Last!.Mask!.Equals(mask.reshape(-1)));        // same generator and default seed → same corruption
        Assert.True(rec.Last.Tokens.Equals(tokens.reshape(-1)));
        Assert.Null(rec.Last.Weights);
        Assert.Equal([512, 16], m.Logits(o.Hidden).shape);
    }

    [Fact]
    public void ElboWeightingGivesTheMdlmEstimate()
    {
        using var scope = NewDisposeScope();
        var opts = new ObjectiveOptions(CfgDropout: 0, Schedule: MaskScheduleKind.Linear, Weighting: MaskWeighting.Elbo);
        var obj = new MaskedObjective(opts);
        var tokens = randint(16, [8, 16], generator: new Generator(1));
        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Masked));
        var rec = new Recorder();
        using (DeviceRandom.SeededDefault(9, CPU)) obj.Compute(m, new TokenBatch(tokens, zeros(8, dtype: ScalarType.Int64)), rec, new Generator(4), train: true);
        Tensor mask, r;
        using (DeviceRandom.SeededDefault(9, CPU)) (_, mask, r) = obj.Corrupt(tokens, 16, new Generator(4));
        // Σ_masked w / Σ_masked 1 must equal (1/(B·T)) Σ_b w(r_b)·#masked_b / (#masked/(B·T)) ... i.e. weights = w(r_b)·#masked/(B·T).
        var w = (1 / (1 - r)).unsqueeze(1).expand(8, 16) * (mask.sum().to_type(ScalarType.Float32) / 128);
        Assert.True(rec.Last!.Weights!.allclose(w.reshape(-1), rtol: 1e-5));
    }

    [Fact]
    public void NextTokenObjectiveShiftsByOneAndSupervisesEverything()
    {
        using var scope = NewDisposeScope();
        var tokens = randint(16, [3, 16], generator: new Generator(1));
        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Autoregressive));
        using (no_grad()) nn.init.normal_(m.OutputWeight, 0, 0.3);
        var rec = new Recorder();
        var cond = tensor(new long[] { 0, 1, 2 });
        new NextTokenObjective(new ObjectiveOptions(CfgDropout: 0)).Compute(m, new TokenBatch(tokens, cond), rec, new Generator(1), train: true);
        Assert.True(rec.Last!.Tokens.Equals(tokens.reshape(-1)));
        Assert.Null(rec.Last.Mask);
        Assert.True(rec.Logits!.allclose(m.Forward(cond, tokens.narrow(1, 0, 15)).reshape(-1, 16)));
    }

    [Fact]
    public void ConditionDropoutUsesTheNullClass()
    {
        using var scope = NewDisposeScope();
        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Autoregressive));
        var labels = zeros(4000, dtype: ScalarType.Int64);
        var dropped = ObjectiveFactory_DropConditions(m, labels, 0.1);
        var rate = (dropped == 4).to_type(ScalarType.Float32).mean().item<float>();
        Assert.InRange(rate, 0.08, 0.12);
        Assert.True(((dropped == 0) | (dropped == 4)).all().item<bool>());
    }

    /// <summary>Batches whose ids were checked at load (token shards) tell the loss to skip its per-call value checks (host syncs); others do not.</summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void CheckedBatchesTurnOffTheLossValueChecks(GeneratorKind kind)
    {
        using var scope = NewDisposeScope();
        ITrainingObjective obj = kind == GeneratorKind.Masked ? new MaskedObjective(new ObjectiveOptions(CfgDropout: 0)) : new NextTokenObjective(new ObjectiveOptions(CfgDropout: 0));
        using var m = new TokenGenerator(GeneratorFixtures.Config(kind));
        var tokens = randint(16, [4, 16], generator: new Generator(1));
        var rec = new Recorder();
        obj.Compute(m, new TokenBatch(tokens, zeros(4, dtype: ScalarType.Int64)), rec, new Generator(2), train: true);
        Assert.True(rec.Last!.CheckValues);
        obj.Compute(m, new TokenBatch(tokens, zeros(4, dtype: ScalarType.Int64)) { IdsChecked = true }, rec, new Generator(2), train: true);
        Assert.False(rec.Last!.CheckValues);

        using var shards = GeneratorFixtures.Shards();
        using var data = new Snce.Training.TokenDataset(shards, Snce.Data.TokenShards.TrainSplit, CPU, withLatents: false);
        Assert.True(data.Batch(arange(2L)).IdsChecked);
    }

    /// <summary>
    /// Where each draw of the masked corruption comes from: r (hence the counts, which the host must know) from the CPU
    /// generator; the positions from the device's default generator, which the trainer seeds per step. Rebuilt
    /// independently from the two streams: the counts from the generator's first B uniforms, the positions as the
    /// ranks of the seeded default stream's first B·T uniforms. Another default seed moves the positions, not the counts;
    /// another generator seed moves the counts.
    /// </summary>
    [Fact]
    public void MaskedPositionsComeFromTheSeededDefaultStreamAndTheCountsFromTheGenerator()
    {
        using var scope = NewDisposeScope();
        var obj = new MaskedObjective(new ObjectiveOptions(CfgDropout: 0));
        var tokens = randint(16, [32, 16], generator: new Generator(1));
        (Tensor Mask, Tensor Progress, long Masked) Corrupt(long defaultSeed, ulong generatorSeed)
        {
            using var seeded = DeviceRandom.SeededDefault(defaultSeed, CPU);
            var c = obj.CorruptCounted(tokens, 16, new Generator(generatorSeed));
            return (c.Mask, c.Progress, c.Masked);
        }
        var (mask, r, masked) = Corrupt(5, 2);
        var expectedR = rand([32], generator: new Generator(2)) * (1 - new ObjectiveOptions().MinProgress);
        Assert.True(r.Equals(expectedR), "r is not the CPU generator's first B uniforms");
        var count = (MaskScheduleKind.Cosine.MaskRatio(expectedR) * 16).ceil().clamp(1, 16).to_type(ScalarType.Int64);
        Assert.Equal(count.sum().item<long>(), masked);
        Tensor u;
        using (DeviceRandom.SeededDefault(5, CPU)) u = rand([32, 16]);
        Assert.True(mask.Equals(u.argsort(1).argsort(1) < count.unsqueeze(1)), "the positions are not the seeded default stream's");

        var otherDefault = Corrupt(6, 2);
        Assert.False(otherDefault.Mask.Equals(mask), "another default seed must move the positions");
        Assert.True(otherDefault.Mask.sum(1).Equals(mask.sum(1)), "the counts depend on the CPU generator only");
        var otherGenerator = Corrupt(5, 3);
        Assert.False(otherGenerator.Mask.sum(1).Equals(mask.sum(1)), "another generator seed must move the counts");
    }

    /// <summary>CFG dropout's coins are the seeded default stream's first B uniforms below p (drawn on the device, not from the generator).</summary>
    [Fact]
    public void ConditionDropoutComesFromTheSeededDefaultStream()
    {
        using var scope = NewDisposeScope();
        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Autoregressive));
        var labels = zeros(64, dtype: ScalarType.Int64);
        Tensor dropped, u;
        using (DeviceRandom.SeededDefault(5, CPU)) dropped = ObjectiveFactory.DropConditions(m.Conditioning, labels, 0.3);
        using (DeviceRandom.SeededDefault(5, CPU)) u = rand([64]);
        Assert.True((dropped == 4).Equals(u < 0.3));
        Assert.True((dropped == 4).any().item<bool>() && (dropped == 0).any().item<bool>(), "p = 0.3 over 64 rows drops some and keeps some");
    }

    static Tensor ObjectiveFactory_DropConditions(TokenGenerator m, Tensor labels, double p) =>
        m.Conditioning.Drop(labels, rand(labels.shape[0], generator: new Generator(1)) < p);
}
