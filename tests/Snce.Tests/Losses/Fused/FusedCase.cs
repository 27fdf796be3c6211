using Snce.Losses;
using Snce.Losses.Fused;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

/// <summary>
/// A random problem (hidden, weight, bias, anchors, codebook, tokens = nearest codes, mask, weights) with odd sizes,
/// and helpers that run the fused loss and the dense reference on it and return loss and gradients.
/// </summary>
sealed class FusedCase : IDisposable
{
    public required Tensor Hidden, Weight, Bias, Anchors, Codebook, Tokens;
    public Tensor? Mask, RowWeights;
    public required Metric Metric;
    public double Tau;
    readonly DisposeScope scope;

    FusedCase(DisposeScope scope) => this.scope = scope;

    public static FusedCase Make(string metric, long n = 13, long h = 10, long d = 6, long k = 37, bool masked = true, bool weighted = true,
        ScalarType dtype = ScalarType.Float32, double? tau = null, double scale = 1.0, int seed = 1)
    {
        var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        var m = Metric.Parse(metric);
        var c = randn([k, d], generator: g, dtype: ScalarType.Float64) * scale;
        // Latents near codes, so that the nearest-code structure is non-trivial but q is spread.
        var z = c.index_select(0, randint(k, [n], generator: g)) + 0.7 * scale * randn([n, d], generator: g, dtype: ScalarType.Float64);
        var tokens = m.Quantize(z, c);
        var mask = masked ? rand([n], generator: g) > 0.3 : null;
        if (mask is not null) mask[0] = tensor(true); // at least one supervised row
        return new FusedCase(scope)
        {
            Hidden = randn([n, h], generator: g, dtype: ScalarType.Float64).to(dtype).requires_grad_(),
            Weight = (randn([k, h], generator: g, dtype: ScalarType.Float64) * 0.5).to(dtype).requires_grad_(),
            Bias = (randn([k], generator: g, dtype: ScalarType.Float64) * 0.1).to(dtype).requires_grad_(),
            Anchors = z.to(dtype), Codebook = c.to(dtype), Tokens = tokens,
            Mask = mask,
            RowWeights = weighted ? (rand([n], generator: g, dtype: ScalarType.Float64) + 0.5).to(dtype) : null,
            // Default τ per metric gives a spread target (mean H(q) ≈ 1.5–2.5 nats here), not a one-hot one.
            Metric = m, Tau = tau ?? metric switch { "l2" => 2.0, "dot" => 1.0, _ => 0.2 },
        };
    }

    public sealed record Result(double Loss, double HardCe, double? Entropy, Tensor GradHidden, Tensor GradWeight, Tensor? GradBias);

    /// <summary>The fused linear form (with bias); grads are detached copies.</summary>
    public Result FusedLinear(int? topK, FusedOptions? options, bool soft = true, bool bias = true, Func<FusedProblem, LossOutput>? run = null)
    {
        ClearGrads();
        LossOutput o;
        if (run is not null)
            o = run(new FusedProblem
            {
                Hidden = Hidden, Weight = Weight, Bias = bias ? Bias : null, Tokens = Tokens, Mask = Mask, Weights = RowWeights,
                Kind = !soft ? TargetKind.Hard : topK is null ? TargetKind.Dense : TargetKind.TopK, TopK = topK ?? 0,
                Anchors = Anchors, Codebook = Codebook, Metric = Metric, Tau = Tau, Options = options ?? FusedOptions.Default,
            });
        else if (soft) o = FusedSnce.ForwardLinear(Hidden, Weight, bias ? Bias : null, Anchors, Codebook, Metric, Tau, Tokens, Mask, RowWeights, options, topK);
        else o = FusedCrossEntropy.ForwardLinear(Hidden, Weight, bias ? Bias : null, Tokens, Mask, RowWeights, options);
        o.Loss.backward();
        return new Result(o.Loss.Double(), o.HardCe.Double(), o.TargetEntropy?.Double(),
            Hidden.grad!.detach().clone(), Weight.grad!.detach().clone(), bias ? Bias.grad!.detach().clone() : null);
    }

    /// <summary>The dense reference in float64 on the same data.</summary>
    public Result Reference(int? topK, bool soft = true, bool bias = true)
    {
        var h = Hidden.detach().to(ScalarType.Float64).requires_grad_();
        var w = Weight.detach().to(ScalarType.Float64).requires_grad_();
        var b = Bias.detach().to(ScalarType.Float64).requires_grad_();
        var logits = bias ? h.matmul(w.t()) + b : h.matmul(w.t());
        var q = soft ? DenseReference.Targets(Anchors.to(ScalarType.Float64), Codebook.to(ScalarType.Float64), Metric, Tau, topK)
            : DenseReference.OneHot(Tokens, Weight.shape[0], ScalarType.Float64);
        var loss = DenseReference.Loss(logits, q, Mask, RowWeights);
        loss.backward();
        var hard = DenseReference.MaskedMean(DenseReference.HardCe(logits.detach(), Tokens), Mask).Double();
        double? ent = soft ? DenseReference.MaskedMean(DenseReference.Entropy(q), Mask).Double() : null;
        return new Result(loss.Double(), hard, ent, h.grad!.detach(), w.grad!.detach(), bias ? b.grad!.detach() : null);
    }

    public static void AssertClose(Result expected, Result actual, double tol)
    {
        Assert.True(Math.Abs(expected.Loss - actual.Loss) <= tol, $"loss {actual.Loss} vs reference {expected.Loss}");
        Assert.True(Math.Abs(expected.HardCe - actual.HardCe) <= tol, $"hard CE {actual.HardCe} vs reference {expected.HardCe}");
        Assert.Equal(expected.Entropy is null, actual.Entropy is null);
        if (expected.Entropy is double e) Assert.True(Math.Abs(e - actual.Entropy!.Value) <= tol, $"H(q) {actual.Entropy} vs reference {e}");
        AssertGrad("hidden", expected.GradHidden, actual.GradHidden, tol);
        AssertGrad("weight", expected.GradWeight, actual.GradWeight, tol);
        if (expected.GradBias is not null) AssertGrad("bias", expected.GradBias, actual.GradBias!, tol);
    }

    public static void AssertGrad(string what, Tensor expected, Tensor actual, double tol)
    {
        Assert.Equal(expected.shape, actual.shape);
        var err = DenseReference.MaxAbs(expected, actual);
        Assert.True(err <= tol, $"grad {what}: max abs error {err:G3} > {tol:G3}");
    }

    void ClearGrads()
    {
        foreach (var t in new[] { Hidden, Weight, Bias })
            if (t.grad is { } g) { g.Dispose(); t.grad = null; }
    }

    public void Dispose() => scope.Dispose();
}
