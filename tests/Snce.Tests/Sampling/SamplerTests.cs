using Snce.Models;
using Snce.Objectives;
using Snce.Sampling;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Sampling;

public class SamplerTests
{
    static TokenGenerator Model(GeneratorKind kind)
    {
        random.manual_seed(21);
        var m = new TokenGenerator(GeneratorFixtures.Config(kind));
        using (no_grad()) nn.init.normal_(m.OutputWeight, 0, 0.3);
        return m;
    }

    static readonly TokenSamplingOptions Plain = new();

    [Fact]
    public void ArSamplingIsReproducibleFromTheSeedAndKvCacheMatchesRecompute()
    {
        using var m = Model(GeneratorKind.Autoregressive);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2, 3 });
        var o = new ArSamplingOptions(Plain, CfgScale: 2.0);
        Tensor Run(NextTokenModel f, ulong seed) =>
            ArSampler.Sample(f, cond, m.Conditioning.NullLike(cond), 16, o, new Generator(seed));
        var a = Run(GeneratorFunctions.KvCached(m), 7);
        var b = Run(GeneratorFunctions.KvCached(m), 7);
        var c = Run(GeneratorFunctions.Recompute(m), 7);
        var d = Run(GeneratorFunctions.KvCached(m), 8);
        Assert.Equal([4, 16], a.shape);
        Assert.True(a.Equals(b));
        Assert.True(a.Equals(c));
        Assert.False(a.Equals(d));
        Assert.True(a.min().item<long>() >= 0 && a.max().item<long>() < 16);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(20)]
    public void MaskedSamplerLeavesNoMaskToken(int steps)
    {
        using var m = Model(GeneratorKind.Masked);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2 });
        var o = new MaskedSamplingOptions(steps, Plain, CfgScale: 1.5);
        var x = MaskedSampler.Sample(GeneratorFunctions.Masked(m), cond, m.Conditioning.NullLike(cond), 16, m.Config.MaskToken, o, new Generator(1));
        Assert.Equal([3, 16], x.shape);
        Assert.Equal(0, (x == m.Config.MaskToken).sum().item<long>());
        Assert.True(x.max().item<long>() < 16);
        var again = MaskedSampler.Sample(GeneratorFunctions.Masked(m), cond, m.Conditioning.NullLike(cond), 16, m.Config.MaskToken, o, new Generator(1));
        Assert.True(x.Equals(again));
    }

    [Fact]
    public void MaskedSamplerRevealsTokensOnTheScheduleAndKeepsThem()
    {
        using var m = Model(GeneratorKind.Masked);
        using var scope = NewDisposeScope();
        var seen = new List<Tensor>();
        MaskedModel spy = (c, x) => { seen.Add(x.clone().DetachFromDisposeScope()); return m.Forward(c, x); };
        var cond = tensor(new long[] { 0, 1 });
        MaskedSampler.Sample(spy, cond, null, 16, 16, new MaskedSamplingOptions(4, Plain), new Generator(2));
        // Inputs of steps 0..3: 16 masked, then ⌊16·cos(π/2·s/4)⌋ = 14, 11, 6.
        Assert.Equal([16L, 14, 11, 6], seen.Select(x => (x == 16).sum(1)[0].item<long>()).ToArray());
        for (var s = 1; s < seen.Count; s++)
        {
            var revealed = seen[s - 1] != 16;
            Assert.True(seen[s].masked_select(revealed).Equals(seen[s - 1].masked_select(revealed)));   // revealed tokens stay
        }
    }

    [Fact]
    public void CfgScaleOneEqualsTheConditionalModel()
    {
        using var m = Model(GeneratorKind.Autoregressive);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 2 });
        var tokens = randint(16, [2, 15], generator: new Generator(3));
        var paired = m.Forward(Guidance.Pair(cond, m.Conditioning.NullLike(cond)), cat([tokens, tokens], 0));
        var conditional = m.Forward(cond, tokens);
        Assert.True(Guidance.Combine(paired, 1.0).allclose(conditional, rtol: 1e-5, atol: 1e-6));
        Assert.False(Guidance.Combine(paired, 3.0).allclose(conditional, rtol: 1e-5, atol: 1e-6));

        // The samplers skip the unconditional pass at scale 1: same draws as the conditional model alone.
        var o = new ArSamplingOptions(Plain, CfgScale: 1.0);
        var withNull = ArSampler.Sample(GeneratorFunctions.KvCached(m), cond, m.Conditioning.NullLike(cond), 16, o, new Generator(5));
        var alone = ArSampler.Sample(GeneratorFunctions.KvCached(m), cond, null, 16, o, new Generator(5));
        Assert.True(withNull.Equals(alone));
        Assert.Throws<ArgumentException>(() => ArSampler.Sample(GeneratorFunctions.KvCached(m), cond, null, 16, o with { CfgScale = 2 }, new Generator(5)));
    }

    [Fact]
    public void TopKOneAndTinyTopPAreGreedy()
    {
        using var scope = NewDisposeScope();
        var logits = randn([64, 16], generator: new Generator(9));
        var greedy = logits.argmax(1);
        Assert.True(TokenSampling.Sample(logits, new(TopK: 1), new Generator(1)).Equals(greedy));
        Assert.True(TokenSampling.Sample(logits, new(TopP: 1e-6), new Generator(1)).Equals(greedy));
        Assert.True(TokenSampling.Sample(logits, new(Temperature: 0), new Generator(1)).Equals(greedy));
        var top3 = logits.topk(3, dim: 1).indexes;
        var drawn = TokenSampling.Sample(logits, new(TopK: 3, Temperature: 5), new Generator(1));
        Assert.True((top3 == drawn.unsqueeze(1)).any(1).all().item<bool>());
        var filtered = TokenSampling.Filter(logits, new(TopP: 0.5));
        var kept = filtered.isfinite();
        var p = logits.softmax(1);
        var keptMass = (p * kept).sum(1);
        var leastKept = p.masked_fill(kept.logical_not(), 2).amin(1);
        Assert.True((keptMass >= 0.5 - 1e-6).all().item<bool>());
        Assert.True((keptMass - leastKept < 0.5).all().item<bool>());   // minimal: without its least likely member it would fall short
    }

    [Fact]
    public void SamplersLeaveNoTensorsBehind()
    {
        using var ar = Model(GeneratorKind.Autoregressive);
        using var mk = Model(GeneratorKind.Masked);
        using var cond = tensor(new long[] { 0, 1 });
        using var uncond = ar.Conditioning.NullLike(cond);
        using var g = new Generator(1);
        LeakCheck.AssertNoLeak(() => ArSampler.Sample(GeneratorFunctions.KvCached(ar), cond, uncond, 16, new ArSamplingOptions(new(TopK: 4, TopP: 0.9), 2.0), g).Dispose(), 3, "AR sampling");
        LeakCheck.AssertNoLeak(() => ArSampler.Sample(GeneratorFunctions.Recompute(ar), cond, uncond, 16, new ArSamplingOptions(Plain, 2.0), g).Dispose(), 3, "AR sampling without cache");
        LeakCheck.AssertNoLeak(() => MaskedSampler.Sample(GeneratorFunctions.Masked(mk), cond, uncond, 16, 16, new MaskedSamplingOptions(4, Plain, CfgScale: 2.0), g).Dispose(), 3, "masked sampling");
    }

    [Fact]
    public void BadOptionsFailClearly()
    {
        Assert.Contains("top-p", Assert.Throws<ArgumentException>(() => new TokenSamplingOptions(TopP: 0).Validate()).Message);
        Assert.Contains("temperature", Assert.Throws<ArgumentException>(() => new TokenSamplingOptions(Temperature: -1).Validate()).Message);
        Assert.Contains("cosine, linear", Assert.Throws<ArgumentException>(() => EnumNames<MaskScheduleKind>.Parse("sqrt")).Message);
    }
}
