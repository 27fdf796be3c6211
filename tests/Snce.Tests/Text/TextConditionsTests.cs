using Snce.Text;
using static TorchSharp.torch;

namespace Snce.Tests.Text;

/// <summary>The per-step caption pick of captioned training data: drawn on the device from its seeded default generator.</summary>
public sealed class TextConditionsTests
{
    /// <summary>
    /// Captions of 6 images (1 to 4 training captions each) whose pooled vector is the caption's id, so a condition names
    /// the caption it packs. E = 1, one token per caption.
    /// </summary>
    static CaptionShards Shards(int[][] train)
    {
        var u = train.SelectMany(x => x).Max() + 1;
        return new CaptionShards
        {
            Info = new CaptionShardsInfo
            {
                Encoder = "test", EncoderDim = 1, MaxTokens = 4, Source = "test",
                Captions = Enumerable.Range(0, u).Select(i => $"caption {i}").ToArray(), Train = train, HeldOut = train.Select(_ => Array.Empty<int>()).ToArray(),
            },
            Tokens = zeros(u, 1, 1, dtype: ScalarType.Float16),
            Lengths = ones(u, dtype: ScalarType.Int64),
            Pooled = arange(u, dtype: ScalarType.Float32).unsqueeze(1),
        };
    }

    /// <summary>
    /// A training pick is caption floor(u_b · n_b) of row b, u the seeded default stream's first B uniforms (rebuilt
    /// independently here): the same seed picks the same captions, another seed others; without a draw, the first caption.
    /// </summary>
    [Fact]
    public void TrainingPicksComeFromTheSeededDefaultStreamAndValidationTakesTheFirstCaption()
    {
        using var scope = NewDisposeScope();
        int[][] train = [[0, 1, 2, 3], [4], [5, 6], [7, 8, 9], [10, 11, 12, 13], [14, 15]];
        using var shards = Shards(train);
        using var text = new TextConditions(shards, arange(6L), maxTokens: 4, CPU);
        var rows = tensor(new long[] { 0, 4, 2, 3, 0, 5, 1, 4, 3, 0, 5, 2, 4, 0, 3, 5 });
        long[] Picked(Tensor conditions) => conditions.select(1, conditions.shape[1] - 1).select(1, 0).to_type(ScalarType.Int64).data<long>().ToArray();   // the pooled row's first channel: the caption id

        long[] Draw(long seed)
        {
            using var seeded = DeviceRandom.SeededDefault(seed, CPU);
            return Picked(text.Draw(rows, random: true));
        }
        Tensor u;
        using (DeviceRandom.SeededDefault(5, CPU)) u = rand([rows.shape[0]]);
        var r = rows.data<long>().ToArray();
        var expected = r.Select((row, b) => (long)train[row][Math.Min((int)Math.Floor(u[b].item<float>() * train[row].Length), train[row].Length - 1)]).ToArray();
        Assert.Equal(expected, Draw(5));
        Assert.Equal(Draw(5), Draw(5));
        Assert.NotEqual(Draw(5), Draw(6));
        Assert.Equal(r.Select(row => (long)train[row][0]).ToArray(), Picked(text.Draw(rows, random: false)));
    }
}
