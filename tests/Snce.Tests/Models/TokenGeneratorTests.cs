using Snce.Models;
using Snce.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Snce.Tests.Models;

public class TokenGeneratorTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void ParameterCountFormulaMatchesTheNetwork(GeneratorKind kind)
    {
        using var m = new TokenGenerator(GeneratorFixtures.Config(kind));
        var actual = m.parameters().Sum(p => p.numel());
        Assert.Equal(m.Config.ParameterCount, actual);
    }

    [Fact]
    public void PresetParameterCountsAtK16384()
    {
        foreach (var line in GeneratorPresets.Describe()) output.WriteLine(line);
        var b = new GeneratorConfig(GeneratorKind.Autoregressive, "B", GeneratorPresets.B, 16_384, 16, 16, 1000);
        var s = new GeneratorConfig(GeneratorKind.Autoregressive, "S", GeneratorPresets.S, 16_384, 16, 16, 1000);
        Assert.InRange(b.ParameterCount, 105_000_000, 115_000_000);   // LlamaGen GPT-B: 111M
        Assert.InRange(s.ParameterCount, 28_000_000, 36_000_000);
        using var built = new TokenGenerator(s);
        Assert.Equal(s.ParameterCount, built.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void UnknownPresetNamesTheAllowedOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => GeneratorPresets.Get("XL"));
        Assert.Contains("tiny, S, B", e.Message);
    }

    [Fact]
    public void HeadStartsAtZeroSoTheFirstLossIsLnK()
    {
        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Autoregressive));
        using var logits = m.Forward(tensor(new long[] { 1, 2 }), zeros(2, 15, dtype: ScalarType.Int64));
        Assert.Equal([2, 16, 16], logits.shape);
        Assert.Equal(0, logits.abs().max().item<float>());
    }

    static TokenGenerator RandomHead(GeneratorKind kind) => GeneratorFixtures.RandomHead(GeneratorFixtures.Config(kind), seed: 11);

    [Fact]
    public void KvCacheLogitsEqualFullForwardLogits()
    {
        using var m = RandomHead(GeneratorKind.Autoregressive);
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var cond = tensor(new long[] { 0, 3, 4 });                   // 4 = the null class
        var tokens = randint(16, [3, 16], generator: g);
        var full = m.Forward(cond, tokens.narrow(1, 0, 15));         // [3, 16, K]

        // One token at a time.
        TensorAssert.Close(GeneratorFixtures.DecodeTokenByToken(m, cond, tokens), full, rtol: 1e-4, atol: 1e-5);

        // Chunks of several tokens (the explicit-mask path).
        using var cache2 = m.NewCache(3);
        var a = m.Decode(cond, tokens.narrow(1, 0, 5), cache2);      // prefix + 5 tokens → row 5
        var b = m.Decode(null, tokens.narrow(1, 5, 4), cache2);      // 4 more → row 9
        Assert.True(a.allclose(full.select(1, 5), rtol: 1e-4, atol: 1e-5));
        Assert.True(b.allclose(full.select(1, 9), rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void ArIsCausalAndMaskedIsBidirectional()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(4);
        var cond = tensor(new long[] { 1 });
        var x = randint(16, [1, 16], generator: g);
        var y = x.clone();
        y[0, 7] = (x[0, 7] + 1) % 16;

        using var ar = RandomHead(GeneratorKind.Autoregressive);
        var la = ar.Forward(cond, x.narrow(1, 0, 15));
        var lb = ar.Forward(cond, y.narrow(1, 0, 15));
        var diff = (la - lb).abs().amax([0, 2]);                      // per output row
        Assert.Equal(0, diff.narrow(0, 0, 8).max().item<float>());   // rows 0..7 never see token 7
        Assert.True(diff.narrow(0, 8, 8).min().item<float>() > 0);

        using var mk = RandomHead(GeneratorKind.Masked);
        var ma = mk.Forward(cond, x);
        var mb = mk.Forward(cond, y);
        Assert.True((ma - mb).abs().amax([0, 2]).min().item<float>() > 0); // every row sees token 7
    }

    [Fact]
    public void ConditionChangesTheOutputAndNullClassIsTheLastId()
    {
        using var m = RandomHead(GeneratorKind.Masked);
        var cc = (ClassConditioning)m.Conditioning;
        Assert.Equal(4, cc.NullClass);
        using var scope = NewDisposeScope();
        var x = full(1, 16, 16L);                                     // all [MASK]
        var a = m.Forward(tensor(new long[] { 0 }), x);
        var b = m.Forward(tensor(new long[] { 1 }), x);
        var u1 = m.Forward(tensor(new long[] { -1 }), x);
        var u2 = m.Forward(m.Conditioning.NullLike(tensor(new long[] { 2 })), x);
        Assert.False(a.allclose(b));
        Assert.True(u1.allclose(u2));                                 // unlabeled (−1) = null class
    }

    [Fact]
    public void DecayGroupsExcludeNormsAndEmbeddings()
    {
        using var m = new TokenGenerator(GeneratorFixtures.Config(GeneratorKind.Autoregressive));
        var groups = m.ParameterGroups().ToDictionary(g => g.Name, g => g.Decay);
        Assert.True(groups["layers.0.attention.wqkv.weight"]);
        Assert.True(groups["output.weight"]);
        Assert.False(groups["tok_embeddings.weight"]);
        Assert.False(groups["cond.class_embedding.weight"]);
        Assert.False(groups["layers.1.ffn_norm.weight"]);
        Assert.False(groups["norm.weight"]);
    }
}
