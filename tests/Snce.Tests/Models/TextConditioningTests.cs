using Snce.Models;
using Snce.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Models;

/// <summary>The caption prefix: shapes, parameter count, attention masking of padded slots, null condition, KV cache.</summary>
public sealed class TextConditioningTests
{
    const int E = 8;

    static GeneratorConfig Config(GeneratorKind kind, int maxTokens = 4) =>
        GeneratorFixtures.Config(kind, classes: 0) with { Text = new TextConditioningConfig("test-encoder", E, maxTokens) };

    /// <summary>A text-conditioned generator with a random (not zero) head, so logits depend on everything.</summary>
    static TokenGenerator Model(GeneratorKind kind, int maxTokens = 4) => GeneratorFixtures.RandomHead(Config(kind, maxTokens), seed: 1);

    /// <summary>Two rows of 16 random token ids; an autoregressive forward reads the first 15 (it predicts all 16).</summary>
    static Tensor Tokens(int seed) => randint(GeneratorFixtures.K, [2, 16], generator: new Generator((ulong)seed));

    /// <summary>Captions with 2 and 3 token rows (random states), packed for a prefix of <paramref name="maxTokens"/>.</summary>
    static Tensor Conditions(int maxTokens, long seed = 7)
    {
        var g = new Generator((ulong)seed);
        var tokens = randn([2, 3, E], generator: g);
        var pooled = randn([2, E], generator: g);
        return TextConditioning.Pack(tokens, tensor(new long[] { 2, 3 }), pooled, maxTokens);
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void Parameter_count_formula_matches_the_network(GeneratorKind kind)
    {
        using var m = new TokenGenerator(Config(kind));
        Assert.Equal(m.Config.ParameterCount, m.parameters().Sum(p => p.numel()));
        Assert.Equal(5, m.Conditioning.PrefixLength);
        Assert.Equal("text", m.Config.Conditioning);
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void A_generator_in_bf16_weights_embeds_the_fp32_packed_captions(GeneratorKind kind)
    {
        // Training in bf16 weights converts the whole generator, conditioning MLPs included, while captions are packed in
        // fp32: the first GPU run failed in the prefix MLP (mat1 float vs mat2 bf16). The bf16 model must take the same
        // condition and agree with the fp32 model to bf16 precision.
        using var scope = NewDisposeScope();
        using var m = Model(kind);
        var (c, t) = (Conditions(maxTokens: 4), Tokens(3));
        var tokens = kind == GeneratorKind.Autoregressive ? t.narrow(1, 0, 15) : t;
        var full = m.ForwardHidden(c, tokens);
        m.to(ScalarType.BFloat16);
        var half = m.ForwardHidden(c, tokens);
        Assert.Equal(ScalarType.BFloat16, half.dtype);
        Assert.Equal(full.shape, half.shape);
        var err = (half.to_type(ScalarType.Float32) - full).abs().max().item<float>();
        Assert.True(err < 0.1f * full.abs().max().item<float>(), $"bf16 prefix differs from fp32 by {err}");
    }

    [Fact]
    public void Pack_lays_out_tokens_padding_flags_and_the_pooled_row()
    {
        using var scope = NewDisposeScope();
        var c = Conditions(maxTokens: 4);
        Assert.Equal(new long[] { 2, 5, E + 1 }, c.shape);
        Assert.Equal(new float[] { 1, 1, 0, 0, 1 }, c[0].select(1, E).data<float>().ToArray());
        Assert.Equal(new float[] { 1, 1, 1, 0, 1 }, c[1].select(1, E).data<float>().ToArray());
        Assert.Equal(0, c[0, 2].abs().sum().item<float>());                          // padding is zeros
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void Padded_slots_are_masked_out_so_a_longer_prefix_gives_the_same_logits(GeneratorKind kind)
    {
        // The weights do not depend on L; prefix slots carry no rotary angle. With padded keys masked out, the
        // same captions in a prefix of 4 or of 9 slots give the same logits; without masking the zero slots would count.
        using var scope = NewDisposeScope();
        using var shortPrefix = Model(kind, maxTokens: 4);
        using var longPrefix = Model(kind, maxTokens: 9);
        using (no_grad())
            foreach (var ((_, a), (_, b)) in shortPrefix.named_parameters().Zip(longPrefix.named_parameters())) b.copy_(a);
        var tokens = Tokens(seed: 3);
        var input = kind == GeneratorKind.Autoregressive ? tokens.narrow(1, 0, 15) : tokens;
        TensorAssert.Close(shortPrefix.Forward(Conditions(4), input), longPrefix.Forward(Conditions(9), input), rtol: 1e-4, atol: 1e-5);
    }

    [Fact]
    public void Kv_cache_decoding_equals_the_full_forward_with_text()
    {
        using var scope = NewDisposeScope();
        using var m = Model(GeneratorKind.Autoregressive);
        var cond = Conditions(4);
        var tokens = Tokens(seed: 4);
        var full = m.Forward(cond, tokens.narrow(1, 0, 15));
        TensorAssert.Close(GeneratorFixtures.DecodeTokenByToken(m, cond, tokens), full, rtol: 1e-4, atol: 1e-5);
    }

    [Fact]
    public void The_caption_changes_the_output_and_the_null_condition_is_all_zeros()
    {
        using var scope = NewDisposeScope();
        using var m = Model(GeneratorKind.Masked);
        var c = Conditions(4);
        var ids = full(2, 16, GeneratorFixtures.K, dtype: ScalarType.Int64);
        var withText = m.Forward(c, ids);
        var other = m.Forward(Conditions(4, seed: 99), ids);
        Assert.False(withText.allclose(other, atol: 1e-4));
        var nul = m.Conditioning.NullLike(c);
        Assert.Equal(0, nul.abs().sum().item<float>());
        var dropped = m.Conditioning.Drop(c, tensor(new[] { true, false }));
        Assert.True((dropped[0] == nul[0]).all().item<bool>());
        Assert.True((dropped[1] == c[1]).all().item<bool>());
        // The null condition uses the learned null slot and sees no token slot.
        var mask = m.Conditioning.PrefixMask(nul)!;
        Assert.Equal(new[] { false, false, false, false, true }, mask[0].data<bool>().ToArray());
    }

    [Fact]
    public void A_condition_of_the_wrong_shape_names_the_expected_one()
    {
        using var m = Model(GeneratorKind.Masked);
        var ex = Assert.Throws<ArgumentException>(() => m.Forward(zeros(2, 3, E + 1), zeros(2, 16, dtype: ScalarType.Int64)));
        Assert.Contains("[B, 5, 9]", ex.Message);
    }

    [Fact]
    public void A_class_conditional_manifest_without_the_text_field_still_reads()
    {
        var json = System.Text.Json.JsonSerializer.Serialize(GeneratorFixtures.Config(GeneratorKind.Masked));
        Assert.DoesNotContain("\"text\"", json);
        Assert.Contains("\"conditioning\":\"class\"", json);
        var back = System.Text.Json.JsonSerializer.Deserialize<GeneratorConfig>(json.Replace(",\"conditioning\":\"class\"", ""));
        Assert.Equal(GeneratorFixtures.Config(GeneratorKind.Masked), back);
        var text = Config(GeneratorKind.Masked);
        Assert.Equal(text, System.Text.Json.JsonSerializer.Deserialize<GeneratorConfig>(System.Text.Json.JsonSerializer.Serialize(text)));
    }
}
