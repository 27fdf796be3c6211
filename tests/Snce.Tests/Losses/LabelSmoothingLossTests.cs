using Snce.Losses;
using static Snce.Tests.Losses.BruteForce;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class LabelSmoothingLossTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    [InlineData(0.6)]
    public void MatchesTheClosedForm(double epsilon)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(31);
        var logits = randn([6, 9], dtype: ScalarType.Float64, generator: g) * 3;
        var tokens = randint(0, 9, [6], generator: g);
        var loss = new LabelSmoothingLoss(9, epsilon);
        var x = logits.detach().requires_grad_(true);
        var output = loss.Forward(x, new TokenTargets(tokens));
        output.Loss.backward();
        // Closed form: t = 1 − ε on the token, ε/(K − 1) on each other code.
        var t = new double[6, 9];
        var ids = tokens.data<long>().ToArray();
        for (var i = 0; i < 6; i++) for (var k = 0; k < 9; k++) t[i, k] = k == ids[i] ? 1 - epsilon : epsilon / 8;
        AssertClose(SoftCrossEntropy(Matrix(logits), t).Average(), output.Loss.item<double>(), 1e-12, "loss");
        var h = epsilon == 0 ? 0 : -(1 - epsilon) * Math.Log(1 - epsilon) - epsilon * Math.Log(epsilon / 8);
        AssertClose(h, output.TargetEntropy!.item<double>(), 1e-12, "H(t)");
        AssertClose(Entropy(t)[0], h, 1e-12, "H(t) brute force");
        var p = Softmax(Matrix(logits));
        var grad = new double[6, 9];
        for (var i = 0; i < 6; i++) for (var k = 0; k < 9; k++) grad[i, k] = (p[i, k] - t[i, k]) / 6;
        AssertClose(grad, Matrix(x.grad!), 1e-12, "grad");
        AssertClose(t, Matrix(loss.DenseTargets(new TokenTargets(tokens), ScalarType.Float64)), 0, "dense target");
        var ce = new CrossEntropyLoss(9).Forward(logits, new TokenTargets(tokens)).Loss.item<double>();
        AssertClose(ce, output.HardCe.item<double>(), 1e-12, "hard CE");
    }

    [Fact]
    public void EpsilonMatchingGivesSnceOffTargetMass()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(32);
        var c = randn([40, 5], dtype: ScalarType.Float64, generator: g);
        var z = randn([100, 5], dtype: ScalarType.Float64, generator: g);
        var tokens = Metric.L2.Quantize(z, c);
        var mask = arange(100) % 3 != 0;
        using var snce = (SnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Perplexity = 4 }, c, Metric.L2, z);
        var eps = LabelSmoothingLoss.EpsilonMatching(snce, new TokenTargets(tokens, z, mask));
        var q = Targets("l2", Matrix(z), Matrix(c), snce.Tau);
        var ids = tokens.data<long>().ToArray();
        var kept = Enumerable.Range(0, 100).Where(i => i % 3 != 0).ToArray();
        AssertClose(kept.Average(i => 1 - q[i, ids[i]]), eps, 1e-12, "ε");
        Assert.InRange(eps, 0.05, 0.95);
        // The matched label smoothing puts the same mass off the true token, on average.
        var ls = new LabelSmoothingLoss(40, eps);
        var t = ls.DenseTargets(new TokenTargets(tokens), ScalarType.Float64);
        AssertClose(eps, 1 - t.gather(1, tokens.unsqueeze(1)).mean().item<double>(), 1e-12, "off-target mass");
    }
}
