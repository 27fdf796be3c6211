using Snce.Losses;
using static Snce.Tests.Losses.BruteForce;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

/// <summary>The documented reduction, for every loss: Loss = Σ m_i w_i ℓ_i / Σ m_i; unsupervised rows change nothing.</summary>
public class MaskAndWeightTests
{
    public static TheoryData<string> Losses => ["ce", "label-smoothing", "snce", "snce-topk", "snce-code"];

    static ITokenLoss Create(string name, Tensor codebook) => name switch
    {
        "snce-topk" => LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Tau = 0.5, TopK = 4 }, codebook, Metric.L2),
        "snce-code" => LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Tau = 0.5, Anchor = NeighborAnchor.Code }, codebook, Metric.L2),
        "snce" => LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Tau = 0.5 }, codebook, Metric.L2),
        "label-smoothing" => LossFactory.Create(new LossSpec { Kind = LossKind.LabelSmoothing, Epsilon = 0.2 }, codebook, Metric.L2),
        _ => LossFactory.Create(new LossSpec { Kind = EnumNames<LossKind>.Parse(name) }, codebook, Metric.L2),
    };

    [Theory]
    [MemberData(nameof(Losses))]
    public void GradientIsWeightedSoftmaxMinusTargetOverSupervisedCount(string name)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(51);
        var (n, k) = (10, 12);
        var codebook = randn([k, 3], dtype: ScalarType.Float64, generator: g);
        var z = randn([n, 3], dtype: ScalarType.Float64, generator: g);
        var tokens = Metric.L2.Quantize(z, codebook);
        var logits = randn([n, k], dtype: ScalarType.Float64, generator: g);
        var mask = tensor(new[] { true, false, true, true, false, true, true, true, false, true });
        var weights = rand([n], dtype: ScalarType.Float64, generator: g) * 2;
        var loss = Create(name, codebook);
        var targets = new TokenTargets(tokens, z, mask, weights);
        var x = logits.detach().requires_grad_(true);
        var output = loss.Forward(x, targets);
        output.Loss.backward();

        var t = Matrix(((IDenseTargets)loss).DenseTargets(targets, ScalarType.Float64));
        var perRow = SoftCrossEntropy(Matrix(logits), t);
        var m = mask.data<bool>().ToArray();
        var w = Vector(weights);
        var supervised = m.Count(b => b);
        AssertClose(Enumerable.Range(0, n).Where(i => m[i]).Sum(i => w[i] * perRow[i]) / supervised, output.Loss.item<double>(), 1e-12, "loss");
        var p = Softmax(Matrix(logits));
        var expected = new double[n, k];
        for (var i = 0; i < n; i++) for (var j = 0; j < k; j++) expected[i, j] = m[i] ? w[i] * (p[i, j] - t[i, j]) / supervised : 0;
        AssertClose(expected, Matrix(x.grad!), 1e-12, "grad");
        // Metrics are unweighted means over the supervised rows.
        var ids = tokens.data<long>().ToArray();
        AssertClose(Enumerable.Range(0, n).Where(i => m[i]).Average(i => -Math.Log(p[i, ids[i]])), output.HardCe.item<double>(), 1e-12, "hard CE");
        if (output.TargetEntropy is { } h)
            AssertClose(Enumerable.Range(0, n).Where(i => m[i]).Average(i => Entropy(t)[i]), h.item<double>(), 1e-12, "H(t)");
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void UnsupervisedRowsChangeNothing(string name)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(52);
        var codebook = randn([12, 3], generator: g);
        var z = randn([6, 3], generator: g);
        var tokens = Metric.L2.Quantize(z, codebook);
        var logits = randn([6, 12], generator: g);
        var mask = tensor(new[] { true, false, true, false, true, true });
        var loss = Create(name, codebook);
        var a = loss.Forward(logits, new TokenTargets(tokens, z, mask));
        // Different logits, latents, tokens and weights in the unsupervised rows 1 and 3.
        var rows = tensor(new long[] { 1, 3 });
        var logits2 = logits.index_copy(0, rows, randn([2, 12], generator: g) * 100);
        var z2 = z.index_copy(0, rows, randn([2, 3], generator: g) * 10);
        var tokens2 = tokens.index_copy(0, rows, tensor(new long[] { 0, 11 }));
        var weights = ones(6).index_copy(0, rows, tensor(new[] { 5f, 7f }));
        var x = logits2.detach().requires_grad_(true);
        var b = loss.Forward(x, new TokenTargets(tokens2, z2, mask, weights));
        b.Loss.backward();
        Assert.Equal(a.Loss.item<float>(), b.Loss.item<float>());
        Assert.Equal(a.HardCe.item<float>(), b.HardCe.item<float>());
        Assert.True(x.grad!.index_select(0, rows).eq(0).all().item<bool>(), "unsupervised rows got a gradient");
        // No supervised row at all: a zero loss, not NaN.
        var none = loss.Forward(logits, new TokenTargets(tokens, z, zeros(6, dtype: ScalarType.Bool)));
        Assert.Equal(0f, none.Loss.item<float>());
    }

    [Fact]
    public void MaskAllTrueAndUnitWeightsEqualTheUnmaskedMean()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(53);
        var codebook = randn([7, 2], dtype: ScalarType.Float64, generator: g);
        var z = randn([5, 2], dtype: ScalarType.Float64, generator: g);
        var tokens = Metric.L2.Quantize(z, codebook);
        var logits = randn([5, 7], dtype: ScalarType.Float64, generator: g);
        var loss = Create("snce", codebook);
        var plain = loss.Forward(logits, new TokenTargets(tokens, z)).Loss.item<double>();
        var masked = loss.Forward(logits, new TokenTargets(tokens, z, ones(5, dtype: ScalarType.Bool), ones(5, dtype: ScalarType.Float64))).Loss.item<double>();
        AssertClose(plain, masked, 1e-15, "loss");
    }
}
