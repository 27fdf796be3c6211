using Snce.Losses;
using Snce.Losses.Fused;
using static TorchSharp.torch;

namespace Snce.Tests.Losses.Fused;

/// <summary>
/// The fused top-k from a <see cref="CodeNeighbors"/> table: the same loss and gradients as the dense float64
/// reference, rows served from the table only where that is provably exact (checked against brute force), the
/// others searched over the whole codebook, and clear errors for a table that does not fit.
/// </summary>
public class NeighborSearchTests
{
    static readonly FusedOptions Odd = new() { RowChunk = 5, CodeChunk = 8 };

    static FusedCase.Result WithTable(FusedCase c, int topK, CodeNeighbors table, FusedOptions options) =>
        c.FusedLinear(topK, options, run: p => FusedEngine.Run(p with { Neighbors = table }));

    [Theory]
    // metric, anchors, top-k
    [InlineData("l2", "latent", 5)]
    [InlineData("l2", "code", 1)]
    [InlineData("cosine", "latent", 4)]
    [InlineData("cosine", "code", 7)]
    [InlineData("dot", "code", 3)]
    [InlineData("dot", "latent", 5)]   // no certificate for dot latents: every row searched, still exact
    public void TableTopKMatchesDenseReference(string metric, string anchors, int topK)
    {
        using var c = FusedCase.Make(metric);
        if (anchors == "code") c.Anchors = c.Codebook.index_select(0, c.Tokens);
        using var table = CodeNeighbors.Build(c.Codebook, c.Metric, CodeNeighbors.DefaultSize(topK, c.Codebook.shape[0]) - 8);
        FusedCase.AssertClose(c.Reference(topK), WithTable(c, topK, table, Odd), 1e-5);
        FusedCase.AssertClose(c.Reference(topK), WithTable(c, topK, table, FusedOptions.Default), 1e-5);
    }

    [Theory]
    [InlineData("l2", ScalarType.Float32)]
    [InlineData("cosine", ScalarType.Float32)]
    [InlineData("l2", ScalarType.Float64)]
    public void TableRowsAreTheBruteForceTopKAndTheRestIsSearched(string metric, ScalarType dtype)
    {
        // Latents at three distances from their codes: near ones are certified, far ones cannot be (table of k codes).
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        const int n = 300, k = 6;
        var m = Metric.Parse(metric);
        var codes = randn([200, 4], generator: g, dtype: ScalarType.Float64);
        var noise = tensor(new[] { 0.02, 0.3, 3.0 }, dtype: ScalarType.Float64).repeat(n / 3).unsqueeze(1);
        var z = codes.index_select(0, randint(200, [n], generator: g)) + noise * randn([n, 4], generator: g, dtype: ScalarType.Float64);
        var (zt, ct) = (z.to(dtype), codes.to(dtype));
        var tokens = m.Quantize(zt, ct);
        var mask = rand([n], generator: g) > 0.1;
        foreach (var size in new[] { k + 2, 24 })
        {
            using var table = CodeNeighbors.Build(ct, m, size);
            var ops = ScoreOperands.Build(zt, ct, tokens, m, dtype);
            var md = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
            var sel = NeighborSearch.Select(zt, ct, tokens, mask, m, 0.5, k, table, ops, 1 << 16, 50, md);
            Assert.Equal(mask.sum().item<long>(), sel.FromTable + sel.Searched);
            Assert.True(sel.FromTable > 0, $"size {size}: no row served from the table");
            Assert.True(sel.Searched > 0, $"size {size}: every row certified, the far latents too");

            // Brute force in float64: the same k codes on every supervised row, and q = softmax(−d/τ) over them.
            var d = m.Distance(zt.to(ScalarType.Float64), ct.to(ScalarType.Float64));
            var (dv, expected) = d.topk(k, dim: 1, largest: false);
            var rows = mask.nonzero().reshape(-1);
            var (idsA, byIdA) = sel.Index.index_select(0, rows).sort(1);
            var (idsE, byIdE) = expected.index_select(0, rows).sort(1);
            var same = idsA == idsE;
            Assert.True(same.all().item<bool>(), $"size {size}: {same.all(1).logical_not().sum().item<long>()} supervised rows got another top-k");
            var qA = sel.Q.to(ScalarType.Float64).index_select(0, rows).gather(1, byIdA);
            var qE = (dv * (-1 / 0.5)).softmax(1).index_select(0, rows).gather(1, byIdE);
            var err = (qA - qE).abs().max().item<double>();
            Assert.True(err < (dtype == ScalarType.Float64 ? 1e-12 : 1e-5), $"size {size}: q error {err}");
        }
    }

    [Fact]
    public void BFloat16TableAndFullSearchAgree()
    {
        using var c = FusedCase.Make("l2", n: 16, k: 64, masked: false, weighted: false);
        using var table = CodeNeighbors.Build(c.Codebook, c.Metric, 16);
        var bf = new FusedOptions { ComputeDtype = ScalarType.BFloat16 };
        var full = c.FusedLinear(4, bf with { TopKSearch = TopKSearch.Full }, run: p => FusedEngine.Run(p with { Neighbors = table }));
        var fromTable = WithTable(c, 4, table, bf);
        var reference = c.Reference(4);
        Assert.True(Math.Abs(fromTable.Loss - reference.Loss) < 2e-2 * Math.Abs(reference.Loss), $"bf16 table loss {fromTable.Loss} vs reference {reference.Loss}");
        Assert.True(Math.Abs(fromTable.Loss - full.Loss) < 2e-2 * Math.Abs(full.Loss), $"bf16 table loss {fromTable.Loss} vs full search {full.Loss}");
        var rel = (fromTable.GradWeight.to(ScalarType.Float64) - reference.GradWeight).norm().Double() / reference.GradWeight.norm().Double();
        Assert.True(rel < 3e-2, $"bf16 weight-gradient relative error {rel}");
    }

    [Fact]
    public void LogitsFormWithTableMatchesReference()
    {
        using var c = FusedCase.Make("cosine");
        using var scope = NewDisposeScope();
        using var table = CodeNeighbors.Build(c.Codebook, c.Metric, 12);
        var logits = (c.Hidden.detach().matmul(c.Weight.detach().t()) + c.Bias.detach()).requires_grad_();
        var o = FusedSnce.Forward(logits, c.Anchors, c.Codebook, c.Metric, c.Tau, c.Tokens, c.Mask, c.RowWeights, 3, Odd, table);
        o.Loss.backward();
        var l64 = logits.detach().to(ScalarType.Float64).requires_grad_();
        var q = DenseReference.Targets(c.Anchors.to(ScalarType.Float64), c.Codebook.to(ScalarType.Float64), c.Metric, c.Tau, 3);
        var reference = DenseReference.Loss(l64, q, c.Mask, c.RowWeights);
        reference.backward();
        Assert.Equal(reference.Double(), o.Loss.Double(), 1e-5);
        FusedCase.AssertGrad("logits", l64.grad!, logits.grad!, 1e-5);
    }

    [Fact]
    public void TablesThatDoNotFitAreRefused()
    {
        using var c = FusedCase.Make("l2", n: 6, k: 20);
        using var scope = NewDisposeScope();
        using var table = CodeNeighbors.Build(c.Codebook, c.Metric, 4);
        LossOutput Run(Tensor codebook, Metric metric, int topK, CodeNeighbors? t, TopKSearch search = TopKSearch.Auto) =>
            FusedSnce.ForwardLinear(c.Hidden, c.Weight, null, c.Anchors, codebook, metric, c.Tau, c.Tokens, null, null,
                new FusedOptions { TopKSearch = search }, topK, t);
        Assert.Contains("different codebook", Assert.Throws<ArgumentException>(() => Run(c.Codebook + 0.01, c.Metric, 3, table)).Message);
        Assert.Contains("metric 'l2'", Assert.Throws<ArgumentException>(() => Run(c.Codebook, Metric.Dot, 3, table)).Message);
        Assert.Contains("fewer than top-k", Assert.Throws<ArgumentException>(() => Run(c.Codebook, c.Metric, 5, table)).Message);
        Assert.Contains("CodeNeighbors.Build", Assert.Throws<ArgumentException>(() => Run(c.Codebook, c.Metric, 3, null, TopKSearch.Neighbors)).Message);
        Assert.Contains("[1, K = 20]", Assert.Throws<ArgumentException>(() => CodeNeighbors.Build(c.Codebook, c.Metric, 21)).Message);
        // Full ignores the table, even one that does not fit.
        Run(c.Codebook, c.Metric, 5, table, TopKSearch.Full).Loss.backward();
    }

    [Theory]
    [InlineData("latent", TopKSearch.Neighbors)]
    [InlineData("code", TopKSearch.Auto)]
    [InlineData("code", TopKSearch.Full)]
    public void TokenLossWithTableEqualsTheReferenceLoss(string anchor, TopKSearch search)
    {
        using var c = FusedCase.Make("cosine", n: 12, k: 23);
        using var scope = NewDisposeScope();
        var logits = c.Hidden.detach().matmul(c.Weight.detach().t());
        var targets = new TokenTargets(c.Tokens.masked_fill(c.Mask!.logical_not(), 0), c.Anchors, c.Mask, c.RowWeights);
        var a = EnumNames<NeighborAnchor>.Parse(anchor);
        (double Loss, Tensor Grad) Run(ITokenLoss loss)
        {
            var x = logits.clone().requires_grad_();
            var o = loss.Forward(x, targets);
            o.Loss.backward();
            var first = o.Loss.Double();
            x.grad!.zero_();
            loss.Forward(x, targets).Loss.backward();   // a second call reuses the table
            (loss as IDisposable)?.Dispose();
            return (first, x.grad!.clone());
        }
        var (refLoss, refGrad) = Run(new SnceLoss(c.Codebook, c.Metric, c.Tau, a, topK: 4));
        var (loss, grad) = Run(new FusedSnceLoss(c.Codebook, c.Metric, c.Tau, a, topK: 4, options: new FusedOptions { TopKSearch = search }));
        Assert.Equal(refLoss, loss, 1e-5);
        FusedCase.AssertGrad("logits", refGrad, grad, 1e-6);
    }

    [Fact]
    public void TableOfTheWholeCodebookIsItsOwnCertificate()
    {
        using var c = FusedCase.Make("dot", n: 9, k: 11);
        using var table = CodeNeighbors.Build(c.Codebook, c.Metric, 11);
        FusedCase.AssertClose(c.Reference(4), WithTable(c, 4, table, Odd), 1e-5);
    }
}
