using Snce.Models;
using Snce.Objectives;
using Snce.Sampling;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

public class InpaintingSamplerTests
{
    static TokenGenerator Model(GeneratorKind kind)
    {
        random.manual_seed(31);
        var m = new TokenGenerator(GeneratorFixtures.Config(kind));
        using (no_grad()) nn.init.normal_(m.OutputWeight, 0, 0.5);      // an untrained head at zero would make every draw uniform
        return m;
    }

    static readonly TokenSamplingOptions Plain = new();

    /// <summary>Random source ids [B, 16] in [0, K) and an editable mask [B, 16] with <paramref name="count"/> true per row.</summary>
    static (Tensor Source, Tensor Editable) Case(int b, int count, ulong seed, bool sameRegion)
    {
        var g = new Generator(seed);
        var source = randint(GeneratorFixtures.K, [b, 16], generator: g);
        var order = sameRegion ? randperm(16, generator: g).unsqueeze(0).expand(b, -1) : stack(Enumerable.Range(0, b).Select(_ => randperm(16, generator: g)).ToArray());
        var editable = zeros(b, 16, ScalarType.Bool).scatter_(1, order.narrow(1, 0, count), ones(b, count, ScalarType.Bool));
        return (source, editable);
    }

    [Theory]
    [InlineData(1, 1, 1.0)]
    [InlineData(5, 4, 2.0)]
    [InlineData(15, 8, 1.0)]
    [InlineData(8, 20, 3.0)]
    public void MaskedInpaintingNeverChangesAKeptToken(int count, int steps, double cfg)
    {
        using var m = Model(GeneratorKind.Masked);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2, 3 });
        for (var seed = 0UL; seed < 4; seed++)
        {
            var (source, editable) = Case(4, count, 100 + seed, sameRegion: false);
            var x = MaskedSampler.Inpaint(GeneratorFunctions.Masked(m), cond, m.Conditioning.NullLike(cond), source, editable, m.Config.MaskToken,
                new MaskedSamplingOptions(steps, Plain, CfgScale: cfg), new Generator(seed));
            Assert.True(x.masked_select(editable.logical_not()).Equals(source.masked_select(editable.logical_not())), "a kept token changed");
            Assert.Equal(0, (x == m.Config.MaskToken).sum().item<long>());
            Assert.True(x.max().item<long>() < GeneratorFixtures.K);
        }
    }

    [Theory]
    [InlineData(true, 1.0)]
    [InlineData(false, 2.0)]
    public void ArInpaintingNeverChangesAKeptTokenWithOrWithoutTheCache(bool sameRegion, double cfg)
    {
        using var m = Model(GeneratorKind.Autoregressive);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2 });
        var o = new ArSamplingOptions(Plain, cfg);
        for (var seed = 0UL; seed < 4; seed++)
        {
            var (source, editable) = Case(3, 1 + (int)seed * 4, 200 + seed, sameRegion);
            var cached = ArSampler.Inpaint(GeneratorFunctions.KvCached(m), cond, m.Conditioning.NullLike(cond), source, editable, o, new Generator(seed));
            var recomputed = ArSampler.Inpaint(GeneratorFunctions.Recompute(m), cond, m.Conditioning.NullLike(cond), source, editable, o, new Generator(seed));
            Assert.True(cached.masked_select(editable.logical_not()).Equals(source.masked_select(editable.logical_not())), "a kept token changed");
            Assert.True(cached.Equals(recomputed));
        }
    }

    [Fact]
    public void InpaintingEverythingIsPlainSamplingWithTheSameSeed()
    {
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 3 });
        var source = zeros(2, 16, ScalarType.Int64);
        var all = ones(2, 16, ScalarType.Bool);
        using (var m = Model(GeneratorKind.Masked))
        {
            var o = new MaskedSamplingOptions(5, Plain, CfgScale: 2.0);
            var sampled = MaskedSampler.Sample(GeneratorFunctions.Masked(m), cond, m.Conditioning.NullLike(cond), 16, m.Config.MaskToken, o, new Generator(9));
            var inpainted = MaskedSampler.Inpaint(GeneratorFunctions.Masked(m), cond, m.Conditioning.NullLike(cond), source, all, m.Config.MaskToken, o, new Generator(9));
            Assert.True(sampled.Equals(inpainted));
        }
        using (var m = Model(GeneratorKind.Autoregressive))
        {
            var o = new ArSamplingOptions(Plain, 2.0);
            var sampled = ArSampler.Sample(GeneratorFunctions.KvCached(m), cond, m.Conditioning.NullLike(cond), 16, o, new Generator(9));
            var inpainted = ArSampler.Inpaint(GeneratorFunctions.KvCached(m), cond, m.Conditioning.NullLike(cond), source, all, o, new Generator(9));
            Assert.True(sampled.Equals(inpainted));
        }
    }

    [Fact]
    public void TheMaskedScheduleContinuesFromTheMaskedFraction()
    {
        using var m = Model(GeneratorKind.Masked);
        using var scope = NewDisposeScope();
        var seen = new List<long>();
        MaskedModel spy = (c, x) => { seen.Add((x == 16).sum(1)[0].item<long>()); return m.Forward(c, x); };
        var (source, editable) = Case(2, 8, 5, sameRegion: true);
        MaskedSampler.Inpaint(spy, tensor(new long[] { 0, 1 }), null, source, editable, 16, new MaskedSamplingOptions(4, Plain), new Generator(2));
        // 8 of 16 masked: γ(r₀) = cos(πr₀/2) = 1/2 → r₀ = 2/3; r_s = 2/3 + (s+1)/12 → ⌊16·cos(π r_s/2)⌋ = ⌊6.12⌋, ⌊4.14⌋, ⌊2.09⌋ after steps 0..2.
        Assert.Equal([8L, 6, 4, 2], seen.ToArray());
        Assert.Equal(2.0 / 3, MaskScheduleKind.Cosine.ProgressAt(0.5), 12);
        Assert.Equal(0.25, MaskScheduleKind.Linear.ProgressAt(0.75), 12);
        Assert.Equal(0.3, MaskScheduleKind.Cosine.MaskRatio(MaskScheduleKind.Cosine.ProgressAt(0.3)), 12);
    }

    [Fact]
    public void ArInpaintingStartsAtTheFirstEditableToken()
    {
        using var m = Model(GeneratorKind.Autoregressive);
        using var scope = NewDisposeScope();
        var feeds = new List<long>();
        NextTokenModel spy = c => new Spy(GeneratorFunctions.KvCached(m)(c), feeds);
        var source = randint(16, [1, 16], generator: new Generator(4));
        var editable = zeros(1, 16, ScalarType.Bool);
        editable[0, 9] = true;
        editable[0, 12] = true;
        ArSampler.Inpaint(spy, tensor(new long[] { 1 }), null, source, editable, new ArSamplingOptions(Plain), new Generator(1));
        // One call with the 9 kept tokens before position 9, then one token per call for positions 9..15 (the last is not fed).
        Assert.Equal([9L, 1, 1, 1, 1, 1, 1], feeds.ToArray());
    }

    sealed class Spy(INextTokenSession inner, List<long> feeds) : INextTokenSession
    {
        public Tensor Feed(Tensor tokens) { feeds.Add(tokens.shape[1]); return inner.Feed(tokens); }
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void BadInpaintingInputsFailClearly()
    {
        using var m = Model(GeneratorKind.Masked);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1 });
        var f = GeneratorFunctions.Masked(m);
        var o = new MaskedSamplingOptions(2, Plain);
        var source = zeros(2, 16, ScalarType.Int64);
        var uneven = zeros(2, 16, ScalarType.Bool);
        uneven[0, 0] = true;
        Assert.Contains("same number", Assert.Throws<ArgumentException>(() => MaskedSampler.Inpaint(f, cond, null, source, uneven, 16, o, new Generator(1))).Message);
        Assert.Contains("bool [2, 16]", Assert.Throws<ArgumentException>(() => MaskedSampler.Inpaint(f, cond, null, source, zeros(2, 15, ScalarType.Bool), 16, o, new Generator(1))).Message);
        Assert.Contains("[MASK]", Assert.Throws<ArgumentException>(() => MaskedSampler.Inpaint(f, cond, null, full(2, 16, 16L), uneven.logical_not(), 16, o, new Generator(1))).Message);
        Assert.Contains("codebook", Assert.Throws<ArgumentException>(() =>
            GeneratorSampler.Inpaint(m, cond, full(2, 16, 40L), ones(2, 16, ScalarType.Bool), new GeneratorSamplingOptions(Plain), new Generator(1))).Message);
    }
}
