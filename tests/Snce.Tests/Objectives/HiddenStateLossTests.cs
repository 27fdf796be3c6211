using Snce.Losses;
using Snce.Losses.Fused;
using Snce.Models;
using Snce.Objectives;
using Snce.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Objectives;

/// <summary>
/// The objectives hand a loss that folds the head in (<see cref="IHiddenStateLoss"/>) hidden states and the head's weight
/// (for masked, the masked rows only). Checked against the same fused loss on the head's logits and against the reference
/// loss: same value, hard CE, target entropy and parameter gradients (autograd through the logits path), on a tiny model.
/// </summary>
public class HiddenStateLossTests
{
    /// <summary>Hides <see cref="IHiddenStateLoss"/>, so the objective takes the logits path with the same loss.</summary>
    sealed class OnLogits(ITokenLoss inner) : ITokenLoss
    {
        public string Name => inner.Name;
        public LossOutput Forward(Tensor logits, TokenTargets targets) => inner.Forward(logits, targets);
    }

    /// <summary>Records whether and with which rows the loss was called through the hidden-state form.</summary>
    sealed class Spy(IHiddenStateLoss inner) : IHiddenStateLoss
    {
        public long? HiddenRows;
        public bool? HadMask;
        public string Name => inner.Name;
        public LossOutput Forward(Tensor logits, TokenTargets targets) => throw new InvalidOperationException("the logits path ran");
        public LossOutput ForwardLinear(Tensor hidden, Tensor weight, Tensor? bias, TokenTargets targets)
        {
            (HiddenRows, HadMask) = (hidden.shape[0], targets.Mask is not null);
            return inner.ForwardLinear(hidden, weight, bias, targets);
        }
    }

    const int D = 4;

    static LossSpec Spec(string loss, LossImplementation implementation) => loss switch
    {
        "ce" => new LossSpec { Implementation = implementation },
        "snce-latent" => new LossSpec { Kind = LossKind.Snce, Anchor = NeighborAnchor.Latent, Tau = 0.7, Implementation = implementation },
        "snce-code" => new LossSpec { Kind = LossKind.Snce, Anchor = NeighborAnchor.Code, Tau = 0.7, Implementation = implementation },
        "snce-topk" => new LossSpec { Kind = LossKind.Snce, Anchor = NeighborAnchor.Code, Tau = 0.7, TopK = 5, Implementation = implementation },
        _ => throw new ArgumentException(loss),
    };

    record Result(double Loss, double HardCe, double? Entropy, Tensor Grads);

    static Result Run(TokenGenerator model, ITrainingObjective objective, TokenBatch batch, ITokenLoss loss)
    {
        model.zero_grad();
        using var g = new Generator(11);
        using var seeded = DeviceRandom.SeededDefault(11, CPU);                         // the masked positions: the same in every run
        var o = objective.Compute(model, batch, loss, g, train: true);
        o.Loss.Loss.backward();
        var grads = cat(model.parameters().Select(p => p.grad!.flatten().to_type(ScalarType.Float64)).ToArray()).DetachFromDisposeScope();
        return new Result(o.Loss.Loss.item<float>(), o.Loss.HardCe.item<float>(), o.Loss.TargetEntropy?.item<float>(), grads);
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive, "ce", false)]
    [InlineData(GeneratorKind.Autoregressive, "snce-latent", false)]
    [InlineData(GeneratorKind.Autoregressive, "snce-code", false)]
    [InlineData(GeneratorKind.Autoregressive, "snce-topk", false)]
    [InlineData(GeneratorKind.Masked, "ce", false)]
    [InlineData(GeneratorKind.Masked, "ce", true)]
    [InlineData(GeneratorKind.Masked, "snce-latent", false)]
    [InlineData(GeneratorKind.Masked, "snce-code", true)]
    [InlineData(GeneratorKind.Masked, "snce-topk", false)]
    public void TheFoldedHeadGivesTheLossAndGradientsOfTheLogitsPath(GeneratorKind kind, string loss, bool elbo)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new TokenGenerator(GeneratorFixtures.Config(kind));
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.3);             // the head starts at zero
        var options = new ObjectiveOptions(CfgDropout: 0, Weighting: elbo ? MaskWeighting.Elbo : MaskWeighting.None);
        var objective = ObjectiveFactory.Create(kind, options);
        var g = new Generator(5);
        var codebook = randn([GeneratorFixtures.K, D], generator: g);
        var tokens = randint(GeneratorFixtures.K, [6, 16], generator: g);
        var latents = codebook.index_select(0, tokens.reshape(-1)).view(6, 16, D) + 0.1 * randn([6, 16, D], generator: g);
        var batch = new TokenBatch(tokens, tensor(new long[] { 0, 1, 2, 3, 0, 1 }), latents);

        var fused = LossFactory.Create(Spec(loss, LossImplementation.Fused), codebook, Metric.L2);
        var reference = LossFactory.Create(Spec(loss, LossImplementation.Reference), codebook, Metric.L2);
        Assert.IsAssignableFrom<IHiddenStateLoss>(fused);
        Assert.False(reference is IHiddenStateLoss);
        var spy = new Spy((IHiddenStateLoss)fused);
        var folded = Run(model, objective, batch, spy);
        var onLogits = Run(model, objective, batch, new OnLogits(fused));
        var expected = Run(model, objective, batch, reference);

        Assert.NotNull(spy.HiddenRows);
        Assert.False(spy.HadMask);
        if (kind == GeneratorKind.Autoregressive) Assert.Equal(6 * 16, spy.HiddenRows);
        else
        {
            // The masked rows only: as many as the corruption (same generator seed) masks.
            using var g2 = new Generator(11);
            using var seeded = DeviceRandom.SeededDefault(11, CPU);
            var (_, mask, _) = ((MaskedObjective)objective).Corrupt(tokens, GeneratorFixtures.K, g2);
            Assert.Equal(mask.sum().item<long>(), spy.HiddenRows);
            Assert.True(spy.HiddenRows < 6 * 16, "some rows are unmasked, so gathering must drop them");
        }
        foreach (var (other, name) in new[] { (onLogits, "fused on logits"), (expected, "reference") })
        {
            Assert.True(Math.Abs(folded.Loss - other.Loss) <= 1e-5 * Math.Max(1, Math.Abs(other.Loss)), $"loss: folded {folded.Loss} vs {name} {other.Loss}");
            Assert.True(Math.Abs(folded.HardCe - other.HardCe) <= 1e-5 * Math.Max(1, other.HardCe), $"hard CE: folded {folded.HardCe} vs {name} {other.HardCe}");
            Assert.Equal(other.Entropy is null, folded.Entropy is null);
            if (other.Entropy is { } h) Assert.True(Math.Abs(folded.Entropy!.Value - h) <= 1e-5 * Math.Max(1, h), $"H(q): folded {folded.Entropy} vs {name} {h}");
            var dg = (folded.Grads - other.Grads).abs().max().item<double>();
            var scale = other.Grads.abs().max().item<double>();
            Assert.True(dg <= 1e-5 * Math.Max(1, scale), $"max |Δ grad| vs {name} = {dg} (max |grad| {scale})");
        }
        Assert.True(folded.Grads.abs().max().item<double>() > 1e-3, "the gradients must not vanish (a test of zeros proves nothing)");
        if (fused is IDisposable d) d.Dispose();
        if (reference is IDisposable r) r.Dispose();
    }

    /// <summary>bf16 weights (what the trainer runs on CUDA): the folded head agrees with the same loss on the bf16 logits.</summary>
    [Theory]
    [InlineData(GeneratorKind.Autoregressive, "ce")]
    [InlineData(GeneratorKind.Masked, "snce-code")]
    public void TheFoldedHeadAgreesInBf16(GeneratorKind kind, string loss)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new TokenGenerator(GeneratorFixtures.Config(kind));
        using (no_grad())
            foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.3);
        model.bfloat16();
        var objective = ObjectiveFactory.Create(kind, new ObjectiveOptions(CfgDropout: 0));
        var g = new Generator(5);
        var codebook = randn([GeneratorFixtures.K, D], generator: g);
        var tokens = randint(GeneratorFixtures.K, [6, 16], generator: g);
        var batch = new TokenBatch(tokens, tensor(new long[] { 0, 1, 2, 3, 0, 1 }));
        var fused = LossFactory.Create(Spec(loss, LossImplementation.Fused), codebook, Metric.L2);
        var folded = Run(model, objective, batch, fused);
        var onLogits = Run(model, objective, batch, new OnLogits(fused));
        Assert.True(Math.Abs(folded.Loss - onLogits.Loss) <= 1e-4 * Math.Abs(onLogits.Loss), $"loss: folded {folded.Loss} vs on logits {onLogits.Loss}");
        var rel = ((folded.Grads - onLogits.Grads).norm() / onLogits.Grads.norm()).item<double>();
        Assert.True(rel < 2e-2, $"gradients: relative error {rel}");
        if (fused is IDisposable d) d.Dispose();
    }

    [Fact]
    public void MaskedRowsAreTheTrueEntriesInOrder()
    {
        using var scope = NewDisposeScope();
        var mask = rand([200], generator: new Generator(1)) < 0.4;
        var count = mask.sum().item<long>();
        Assert.True(MaskedObjective.MaskedRows(mask, count).Equals(mask.nonzero().squeeze(1)));
    }

    [Fact]
    public void AHeadOfTheWrongSizeIsRefusedByName()
    {
        using var scope = NewDisposeScope();
        var codebook = randn([16, D]);
        var targets = new TokenTargets(zeros(8, dtype: ScalarType.Int64));
        var hidden = randn([8, 6]);
        var e1 = Assert.Throws<ArgumentException>(() => new FusedCrossEntropyLoss(16).ForwardLinear(hidden, randn([12, 6]), null, targets));
        Assert.Contains("K = 16", e1.Message);
        using var snce = new FusedSnceLoss(codebook, Metric.L2, 1.0, NeighborAnchor.Code);
        var e2 = Assert.Throws<ArgumentException>(() => snce.ForwardLinear(hidden, randn([12, 6]), null, targets));
        Assert.Contains("head's weight", e2.Message);
    }
}
