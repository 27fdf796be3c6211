using Snce.Models;
using Snce.Sampling;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

public class SourceTokenConditioningTests
{
    const int K = GeneratorFixtures.K, T = 16, Steps = 100;

    static (TokenGenerator Model, SourceTokenConditioning Cond) Build(GeneratorKind kind)
    {
        random.manual_seed(3);
        var config = GeneratorFixtures.Config(kind);
        var cond = new SourceTokenConditioning(GeneratorFixtures.Classes, K, T, config.Transformer.Dim, config.Transformer.InitStd);
        return (new TokenGenerator(config, cond), cond);
    }

    [Fact]
    public void ThePrefixHoldsTheClassAndEverySourceSlotAndDropsToNull()
    {
        var (model, cond) = Build(GeneratorKind.Autoregressive);
        using var m = model;
        using var scope = NewDisposeScope();
        Assert.Equal(1 + T, cond.PrefixLength);
        var c = cond.Condition(tensor(new long[] { 2, -1 }), randint(K, [2, T], generator: new Generator(1)));
        Assert.Equal([2, 1 + T, GeneratorFixtures.Config(GeneratorKind.Autoregressive).Transformer.Dim], cond.Embed(c).shape);
        var dropped = cond.Drop(c, tensor(new[] { true, false }));
        Assert.Equal(GeneratorFixtures.Classes, dropped[0, 0].item<long>());
        Assert.True((dropped[0].narrow(0, 1, T) == K).all().item<bool>());
        Assert.True(dropped[1].Equals(c[1]));
        // The same code at two source positions embeds differently (the positions are learned, not rotary).
        var same = cond.Condition(tensor(new long[] { 0 }), full(1, T, 5L));
        var e = cond.Embed(same);
        Assert.False(e[0, 1].allclose(e[0, 2]));
        Assert.Contains("[B, 17]", Assert.Throws<ArgumentException>(() => cond.Embed(zeros(2, 3, ScalarType.Int64))).Message);
    }

    [Fact]
    public void AnArGeneratorLearnsATranslationFromTheSourcePrefix()
    {
        // The "translation": target token i = (source token i + 1) mod K. Random sources, so only the prefix can tell.
        var (model, cond) = Build(GeneratorKind.Autoregressive);
        using var m = model;
        using var opt = optim.Adam(m.parameters(), lr: 3e-3);
        var g = new Generator(7);
        for (var step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            var src = randint(K, [32, T], generator: g);
            var dst = (src + 1) % K;
            var logits = m.Forward(cond.Condition(zeros(32, ScalarType.Int64), src), dst.narrow(1, 0, T - 1));    // [B, T, K]
            var loss = nn.functional.cross_entropy(logits.reshape(-1, K), dst.reshape(-1));
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
        using var eval = NewDisposeScope();
        m.eval();
        var test = randint(K, [16, T], generator: new Generator(99));
        var c = cond.Condition(zeros(16, ScalarType.Int64), test);
        var sampled = ArSampler.Sample(GeneratorFunctions.KvCached(m), c, null, T, new ArSamplingOptions(new TokenSamplingOptions(Temperature: 0)), new Generator(1));
        var accuracy = (sampled == (test + 1) % K).to_type(ScalarType.Float32).mean().item<float>();
        Assert.True(accuracy > 0.5, $"greedy translations of held-out sources are right for only {accuracy:P0} of tokens (chance: {1.0 / K:P0})");
    }

    [Fact]
    public void AMaskedGeneratorReadsTheSameSourcePrefix()
    {
        var (model, cond) = Build(GeneratorKind.Masked);
        using var m = model;
        using var scope = NewDisposeScope();
        var c = cond.Condition(tensor(new long[] { 1, 2 }), randint(K, [2, T], generator: new Generator(2)));
        var x = MaskedSampler.Sample(GeneratorFunctions.Masked(m), c, cond.NullLike(c), T, m.Config.MaskToken,
            new MaskedSamplingOptions(3, new TokenSamplingOptions(), CfgScale: 2.0), new Generator(3));
        Assert.Equal([2, T], x.shape);
        Assert.True(x.max().item<long>() < K);
    }
}
