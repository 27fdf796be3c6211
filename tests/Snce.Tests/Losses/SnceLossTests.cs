using Snce.Losses;
using static Snce.Tests.Losses.BruteForce;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class SnceLossTests
{
    sealed record Case(Tensor Logits, Tensor Codebook, Tensor Latents, Tensor Tokens);

    static Case Data(int n, int k, int d, long seed, string metric = "l2", ScalarType dtype = ScalarType.Float64)
    {
        var g = new Generator((ulong)seed);
        var logits = randn([n, k], dtype: dtype, generator: g) * 2;
        var c = randn([k, d], dtype: dtype, generator: g) * (rand([k, 1], dtype: dtype, generator: g) + 0.5);
        var z = randn([n, d], dtype: dtype, generator: g);
        return new Case(logits, c, z, Metric.Parse(metric).Quantize(z, c));
    }

    static SnceLoss Snce(Case c, string metric, double tau, NeighborAnchor anchor = NeighborAnchor.Latent, int? topK = null) =>
        new(c.Codebook, Metric.Parse(metric), tau, anchor, topK);

    [Theory]
    [InlineData("l2", 0.5, null, NeighborAnchor.Latent)]
    [InlineData("dot", 0.3, null, NeighborAnchor.Code)]
    [InlineData("cosine", 0.05, 5, NeighborAnchor.Latent)]
    [InlineData("l2", 1.0, 3, NeighborAnchor.Code)]
    public void LossMetricsAndGradientMatchTheBruteForceReference(string metric, double tau, int? topK, NeighborAnchor anchor)
    {
        using var scope = NewDisposeScope();
        var c = Data(7, 13, 4, 21, metric);
        using var loss = Snce(c, metric, tau, anchor, topK);
        var x = c.Logits.detach().requires_grad_(true);
        var output = loss.Forward(x, new TokenTargets(c.Tokens, c.Latents));
        output.Loss.backward();

        var anchors = anchor == NeighborAnchor.Latent ? c.Latents : c.Codebook.index_select(0, c.Tokens);
        var q = Targets(metric, Matrix(anchors), Matrix(c.Codebook), tau, topK);
        var logits = Matrix(c.Logits);
        var perRow = SoftCrossEntropy(logits, q);
        AssertClose(perRow.Average(), output.Loss.item<double>(), 1e-12, "loss");
        AssertClose(Entropy(q).Average(), output.TargetEntropy!.item<double>(), 1e-12, "H(q)");
        var tokens = c.Tokens.data<long>().ToArray();
        var p = Softmax(logits);
        AssertClose(tokens.Select((t, i) => -Math.Log(p[i, t])).Average(), output.HardCe.item<double>(), 1e-12, "hard CE");
        Assert.True(output.Kl!.item<double>() >= -1e-12, "KL(q‖p) ≥ 0");
        // ∂ mean / ∂ logits = (softmax(logits) − q) / N.
        var expected = new double[7, 13];
        for (var i = 0; i < 7; i++) for (var k = 0; k < 13; k++) expected[i, k] = (p[i, k] - q[i, k]) / 7;
        AssertClose(expected, Matrix(x.grad!), 1e-12, "grad");
        AssertClose(q, Matrix(loss.DenseTargets(new TokenTargets(c.Tokens, c.Latents), ScalarType.Float64)), 1e-12, "dense q");
    }

    [Fact]
    public void GradientEqualsAutogradOfTheDenseFormulaInFloat32()
    {
        using var scope = NewDisposeScope();
        var c = Data(33, 50, 8, 22, dtype: ScalarType.Float32);
        using var loss = Snce(c, "l2", 0.7);
        var targets = new TokenTargets(c.Tokens, c.Latents);
        var x = c.Logits.detach().requires_grad_(true);
        loss.Forward(x, targets).Loss.backward();
        // Autograd through an independently written formula: −mean Σ q log softmax.
        var y = c.Logits.detach().requires_grad_(true);
        var q = NeighborTargets.Probs(c.Latents, c.Codebook, Metric.L2, 0.7);
        (-(q * nn.functional.log_softmax(y, 1)).sum(1).mean()).backward();
        Assert.True(x.grad!.allclose(y.grad!, rtol: 1e-5, atol: 1e-7));
        var closedForm = (nn.functional.softmax(c.Logits, 1) - q) / 33;
        Assert.True(x.grad!.allclose(closedForm, rtol: 1e-5, atol: 1e-7));
    }

    [Theory]
    [InlineData(NeighborAnchor.Latent)]
    [InlineData(NeighborAnchor.Code)]
    public void TopKWithKEqualToTheCodebookSizeEqualsFullSnce(NeighborAnchor anchor)
    {
        using var scope = NewDisposeScope();
        var c = Data(9, 17, 5, 23, "cosine");
        var targets = new TokenTargets(c.Tokens, c.Latents);
        using var full = Snce(c, "cosine", 0.1, anchor);
        using var topK = Snce(c, "cosine", 0.1, anchor, topK: 17);
        var (x1, x2) = (c.Logits.detach().requires_grad_(true), c.Logits.detach().requires_grad_(true));
        var (a, b) = (full.Forward(x1, targets), topK.Forward(x2, targets));
        a.Loss.backward(); b.Loss.backward();
        AssertClose(a.Loss.item<double>(), b.Loss.item<double>(), 1e-12, "loss");
        AssertClose(a.TargetEntropy!.item<double>(), b.TargetEntropy!.item<double>(), 1e-12, "H(q)");
        AssertClose(Matrix(x1.grad!), Matrix(x2.grad!), 1e-14, "grad");
    }

    [Fact]
    public void SmallTauGivesCrossEntropyOnTheNearestCode()
    {
        using var scope = NewDisposeScope();
        var c = Data(12, 20, 4, 24);
        var targets = new TokenTargets(c.Tokens, c.Latents);
        using var snce = Snce(c, "l2", 1e-7);
        var ce = new CrossEntropyLoss(20).Forward(c.Logits, targets);
        var s = snce.Forward(c.Logits, targets);
        AssertClose(ce.Loss.item<double>(), s.Loss.item<double>(), 1e-9, "SNCE(τ → 0) vs CE");
        AssertClose(ce.Loss.item<double>(), s.HardCe.item<double>(), 1e-12, "hard CE");
        AssertClose(0, s.TargetEntropy!.item<double>(), 1e-9, "H(q)");
    }

    [Theory]
    [InlineData(ScalarType.Float32, null)]
    [InlineData(ScalarType.Float64, null)]
    [InlineData(ScalarType.Float32, 4)]
    public void StableForTinyTauAndHugeDistances(ScalarType dtype, int? topK)
    {
        using var scope = NewDisposeScope();
        var c = Data(10, 30, 4, 25, dtype: dtype);
        var (z, cb) = (c.Latents * 60, c.Codebook * 60);
        var tokens = Metric.L2.Quantize(z, cb);
        Assert.True(Metric.L2.Distance(z, cb).to_type(ScalarType.Float64).mean().item<double>() > 1e4, "distances ~1e4");
        using var snce = new SnceLoss(cb, Metric.L2, 1e-4, topK: topK);
        var x = c.Logits.detach().requires_grad_(true);
        var targets = new TokenTargets(tokens, z);
        var s = snce.Forward(x, targets);
        s.Loss.backward();
        Assert.True(s.Loss.isfinite().item<bool>() && x.grad!.isfinite().all().item<bool>(), "loss and grad finite");
        var ce = new CrossEntropyLoss(30).Forward(c.Logits, targets);
        AssertClose(ce.Loss.to_type(ScalarType.Float64).item<double>(), s.Loss.to_type(ScalarType.Float64).item<double>(), 1e-5, "limit: CE on the nearest code");
        AssertClose(0, s.TargetEntropy!.to_type(ScalarType.Float64).item<double>(), 1e-6, "H(q)");
    }

    [Fact]
    public void CodeAnchoredTopKUsesThePrecomputedTableAndMatchesTheDenseTargets()
    {
        using var scope = NewDisposeScope();
        var c = Data(40, 300, 8, 26);
        var targets = new TokenTargets(c.Tokens);
        using var loss = Snce(c, "l2", 0.3, NeighborAnchor.Code, topK: 10);
        var dense = loss.DenseTargets(targets, ScalarType.Float64);
        var anchors = c.Codebook.index_select(0, c.Tokens);
        AssertClose(Targets("l2", Matrix(anchors), Matrix(c.Codebook), 0.3, 10), Matrix(dense), 1e-12, "q from the table");
        // A table handed in (e.g. a token shard's, int32 ids, more columns than k) gives the same loss.
        using var table = NeighborTargets.CodeTable(c.Codebook, Metric.L2, 16);
        using var given = new SnceLoss(c.Codebook, Metric.L2, 0.3, NeighborAnchor.Code, 10,
            new NearestCodes(table.Ids.to_type(ScalarType.Int32), table.Distances));
        AssertClose(loss.Forward(c.Logits, targets).Loss.item<double>(), given.Forward(c.Logits, targets).Loss.item<double>(), 1e-12, "loss");
    }

    [Fact]
    public void LatentsAreNotDifferentiatedThrough()
    {
        using var scope = NewDisposeScope();
        var c = Data(5, 9, 3, 27);
        var z = c.Latents.detach().requires_grad_(true);
        using var loss = Snce(c, "dot", 0.5);
        var x = c.Logits.detach().requires_grad_(true);
        loss.Forward(x, new TokenTargets(c.Tokens, z)).Loss.backward();
        Assert.Null(z.grad);
        Assert.NotNull(x.grad);
    }

    [Fact]
    public void TargetMassOnTokensIsQOfTheTrueToken()
    {
        using var scope = NewDisposeScope();
        var c = Data(8, 11, 4, 28);
        using var loss = Snce(c, "l2", 0.4);
        var q = Targets("l2", Matrix(c.Latents), Matrix(c.Codebook), 0.4);
        var tokens = c.Tokens.data<long>().ToArray();
        var mass = Vector(loss.TargetMassOnTokens(new TokenTargets(c.Tokens, c.Latents)));
        for (var i = 0; i < 8; i++) AssertClose(q[i, tokens[i]], mass[i], 1e-12, $"q(t|z)[{i}]");
    }

    [Fact]
    public void HeldTensorsSurviveTheCallersDisposeScope()
    {
        SnceLoss loss;
        Case c;
        using (var s = NewDisposeScope())
        {
            c = Data(4, 9, 3, 29);
            loss = Snce(c, "l2", 0.5, NeighborAnchor.Code, topK: 3);
            s.MoveToOuter(c.Logits, c.Tokens);
        }
        using (loss)
        {
            var output = loss.Forward(c.Logits, new TokenTargets(c.Tokens));
            Assert.True(output.Loss.isfinite().item<bool>());
        }
        c.Logits.Dispose(); c.Tokens.Dispose();
    }
}
