using Snce.Editing;
using Snce.Models;
using Snce.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Models;

/// <summary>
/// The [instruction | source] prefix of instruction edits: it is the text prefix and the source prefix side by side (checked against the two
/// modules run alone), the instruction changes the output, the null instruction (classifier-free guidance over the text) keeps the source,
/// padded instruction slots are masked, the KV cache agrees with the full forward.
/// </summary>
public sealed class InstructionConditioningTests
{
    const int E = 8, T = GeneratorFixtures.Grid * GeneratorFixtures.Grid, K = GeneratorFixtures.K;

    static GeneratorConfig Config(GeneratorKind kind, int maxTokens = 4) => GeneratorFixtures.Config(kind, classes: 0) with
    {
        Text = new TextConditioningConfig("test-encoder", E, maxTokens),
        Source = new SourceConditioningConfig(T),
    };

    /// <summary>Two instructions with 2 and 3 token rows (random states), packed for a prefix of <paramref name="maxTokens"/>.</summary>
    static Tensor Instructions(int maxTokens, long seed = 7)
    {
        var g = new Generator((ulong)seed);
        return TextConditioning.Pack(randn([2, 3, E], generator: g), tensor(new long[] { 2, 3 }), randn([2, E], generator: g), maxTokens);
    }

    /// <summary>Source conditions of two random sources (the null class, then T ids).</summary>
    static Tensor Sources(long seed = 3) =>
        SourceTokenConditioning.Pack(full(2, -1L), randint(K, [2, T], generator: new Generator((ulong)seed)));

    static Tensor Ids(GeneratorKind kind, long seed = 5)
    {
        var ids = randint(K, [2, T], generator: new Generator((ulong)seed));
        return kind == GeneratorKind.Autoregressive ? ids.narrow(1, 0, T - 1) : ids;
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void The_prefix_is_the_text_prefix_then_the_source_prefix(GeneratorKind kind)
    {
        using var scope = NewDisposeScope();
        using var m = GeneratorFixtures.RandomHead(Config(kind), seed: 1);
        Assert.IsType<InstructionConditioning>(m.Conditioning);
        Assert.Equal("instruction", m.Config.Conditioning);
        Assert.Equal(m.Config.ParameterCount, m.parameters().Sum(p => p.numel()));
        Assert.Equal(5 + 1 + T, m.Conditioning.PrefixLength);
        // A second implementation: the two existing modules, alone, with the same weights.
        using var text = new TextConditioning(m.Config.Text!, m.Config.Transformer.Dim, 0.02);
        using var source = new SourceTokenConditioning(0, K, T, m.Config.Transformer.Dim, 0.02);
        var own = m.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
        {
            foreach (var (name, p) in text.named_parameters()) p.copy_(own[$"cond.text.{name}"]);
            foreach (var (name, p) in source.named_parameters()) p.copy_(own[$"cond.source.{name}"]);
        }
        var (instructions, sources) = (Instructions(4), Sources());
        var packed = InstructionConditioning.Pack(instructions, sources);
        Assert.Equal(new long[] { 2, 5 * (E + 1) + 1 + T }, packed.shape);
        TensorAssert.Close(m.Conditioning.Embed(packed), cat([text.Embed(instructions), source.Embed(sources)], 1), rtol: 1e-6, atol: 1e-7);
        var mask = m.Conditioning.PrefixMask(packed)!;
        Assert.True(mask.Equals(cat([text.PrefixMask(instructions)!, ones(2, 1 + T, dtype: ScalarType.Bool)], 1)));
    }

    [Fact]
    public void Packing_keeps_the_source_ids_exact_up_to_the_null_source_of_a_large_codebook()
    {
        using var scope = NewDisposeScope();
        const int bigK = 262_144;
        var config = Config(GeneratorKind.Masked) with { CodebookSize = bigK, Transformer = GeneratorFixtures.Config(GeneratorKind.Masked).Transformer };
        using var c = new InstructionConditioning(config.Text!, bigK, T, 16, 0.02);
        var ids = randint(bigK, [2, T], generator: new Generator(9));
        ids[0, 0] = tensor(bigK);                                                                  // the null source id K
        var sources = SourceTokenConditioning.Pack(full(2, -1L), ids);
        var packed = InstructionConditioning.Pack(Instructions(4), sources);
        Assert.True(c.SourcePart(packed).Equals(sources));
        Assert.True(c.TextPart(packed).Equals(Instructions(4)));
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void The_instruction_changes_the_logits_and_the_null_instruction_does_not(GeneratorKind kind)
    {
        using var scope = NewDisposeScope();
        using var m = GeneratorFixtures.RandomHead(Config(kind), seed: 2);
        var sources = Sources();
        var ids = Ids(kind);
        var a = InstructionConditioning.Pack(Instructions(4, seed: 7), sources);
        var b = InstructionConditioning.Pack(Instructions(4, seed: 99), sources);
        var la = m.Forward(a, ids);
        var lb = m.Forward(b, ids);
        Assert.True((la - lb).abs().max().item<float>() > 1e-3, "different instructions for the same source gave the same logits");
        // Another source under the same instruction changes them too.
        Assert.True((la - m.Forward(InstructionConditioning.Pack(Instructions(4, seed: 7), Sources(seed: 4)), ids)).abs().max().item<float>() > 1e-3);
        // Classifier-free guidance over the text: the null condition drops the instruction and keeps the source, so every
        // instruction dropped gives the same logits, and they are not those of a dropped source.
        var drop = tensor(new[] { true, false });
        var da = m.Conditioning.Drop(a, drop);
        var db = m.Conditioning.Drop(b, drop);
        var lda = m.Forward(da, ids);
        var ldb = m.Forward(db, ids);
        TensorAssert.Close(lda[0], ldb[0], rtol: 0, atol: 0);
        TensorAssert.Close(lda[1], la[1], rtol: 0, atol: 0);
        TensorAssert.Close(m.Forward(m.Conditioning.NullLike(a), ids)[0], lda[0], rtol: 0, atol: 0);
        var c = (InstructionConditioning)m.Conditioning;
        Assert.True(c.SourcePart(da).Equals(sources));
        Assert.Equal(0, c.TextPart(da)[0].abs().sum().item<float>());
    }

    [Fact]
    public void Without_text_conditioning_a_paired_generator_refuses_an_instruction()
    {
        using var scope = NewDisposeScope();
        using var plain = GeneratorFixtures.RandomHead(GeneratorFixtures.Config(GeneratorKind.Masked, classes: 0) with { Source = new SourceConditioningConfig(T) }, seed: 3);
        var src = randint(K, [2, T], generator: new Generator(3));
        Assert.Contains("no text conditioning", Assert.Throws<ArgumentException>(() => ImageTranslation.Conditions(plain, src, Instructions(4))).Message);
        // Its condition is the source alone, as before instructions existed.
        Assert.True(ImageTranslation.Conditions(plain, src).Equals(SourceTokenConditioning.Pack(full(2, -1L), src)));
        using var instructed = GeneratorFixtures.RandomHead(Config(GeneratorKind.Masked), seed: 3);
        Assert.Contains("trained with instructions", Assert.Throws<ArgumentException>(() => ImageTranslation.Conditions(instructed, src)).Message);
        Assert.True(ImageTranslation.Conditions(instructed, src, Instructions(4)).Equals(InstructionConditioning.Pack(Instructions(4), SourceTokenConditioning.Pack(full(2, -1L), src))));
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void Padded_instruction_slots_are_masked_so_a_longer_prefix_gives_the_same_logits(GeneratorKind kind)
    {
        using var scope = NewDisposeScope();
        using var shortPrefix = GeneratorFixtures.RandomHead(Config(kind, maxTokens: 4), seed: 1);
        using var longPrefix = GeneratorFixtures.RandomHead(Config(kind, maxTokens: 9), seed: 1);
        using (no_grad())
            foreach (var ((_, a), (_, b)) in shortPrefix.named_parameters().Zip(longPrefix.named_parameters())) b.copy_(a);
        var ids = Ids(kind);
        TensorAssert.Close(shortPrefix.Forward(InstructionConditioning.Pack(Instructions(4), Sources()), ids),
            longPrefix.Forward(InstructionConditioning.Pack(Instructions(9), Sources()), ids), rtol: 1e-4, atol: 1e-5);
    }

    [Fact]
    public void Kv_cache_decoding_equals_the_full_forward_with_an_instruction()
    {
        using var scope = NewDisposeScope();
        using var m = GeneratorFixtures.RandomHead(Config(GeneratorKind.Autoregressive), seed: 4);
        var cond = InstructionConditioning.Pack(Instructions(4), Sources());
        var tokens = randint(K, [2, T], generator: new Generator(6));
        TensorAssert.Close(GeneratorFixtures.DecodeTokenByToken(m, cond, tokens), m.Forward(cond, tokens.narrow(1, 0, T - 1)), rtol: 1e-4, atol: 1e-5);
    }
}
