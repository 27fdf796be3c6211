using Snce.Tokenizer;
using Xunit.Abstractions;

namespace Snce.Tests.Tokenizer;

public class TokenizerConfigTests(ITestOutputHelper output)
{
    /// <summary>Encoder + decoder parameters (without the K×D codebook) for gray and RGB input; docs/tokenizers.md quotes these.</summary>
    [Theory]
    [InlineData("tiny", 159_649, 160_227)]
    [InlineData("small", 2_530_945, 2_533_251)]
    [InlineData("base", 15_129_281, 15_133_891)]
    public void PresetParameterCountsMatchTheDocs(string preset, long gray, long rgb)
    {
        long Count(int channels)
        {
            using var model = new VqTokenizer(TokenizerPresets.Get(preset) with { Channels = channels, CodebookSize = 2 });
            return model.parameters().Sum(p => p.numel()) - model.Quantizer.parameters().Sum(p => p.numel());
        }
        output.WriteLine($"{preset}: gray {Count(1)}, rgb {Count(3)}");
        Assert.Equal(gray, Count(1));
        Assert.Equal(rgb, Count(3));
    }

    [Theory]
    [InlineData(28, 2, 32, 8)]
    [InlineData(32, 2, 32, 8)]
    [InlineData(64, 2, 64, 16)]
    [InlineData(28, 1, 32, 16)]
    [InlineData(64, 3, 64, 8)]
    public void TokenGridFollowsImageSizeAndDownsamples(int imageSize, int downsamples, int workSize, int grid)
    {
        var config = TokenizerPresets.Tiny with { ImageSize = imageSize, ChannelMultipliers = [.. Enumerable.Repeat(1, downsamples + 1)] };
        Assert.Equal((workSize, grid, grid * grid), (config.WorkSize, config.GridSize, config.TokensPerImage));
        using var model = new VqTokenizer(config);
        using var tokens = model.Tokenize(TorchSharp.torch.zeros(1, 1, imageSize, imageSize));
        Assert.Equal([1L, grid * grid], tokens.shape);
    }

    [Fact]
    public void ConfigRoundTripsThroughJsonWithValueEquality()
    {
        var config = TokenizerPresets.Small with { CodebookSize = 262_144, Metric = "dot", Quantizer = QuantizerKind.Ema, ChannelMultipliers = [1, 2, 4] };
        var json = config.ToJson();
        Assert.Contains("\"codebook_size\": 262144", json);
        Assert.Contains("\"quantizer\": \"ema\"", json);
        var back = TokenizerConfig.FromJson(json);
        Assert.Equal(config, back);
        Assert.NotEqual(config, back with { ChannelMultipliers = [1, 2, 2] });
    }

    [Theory]
    [InlineData(0, 32, "codebook size must be in [2, 1048576], got 0")]
    [InlineData(16, 24, "norm groups (24) must divide")]
    public void InvalidConfigsFailNamingTheValue(int codebook, int groups, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => (TokenizerPresets.Small with { CodebookSize = codebook, NormGroups = groups }).Validate());
        Assert.Contains(message, e.Message);
        Assert.Contains("unknown metric 'manhattan'", Assert.Throws<ArgumentException>(() => (TokenizerPresets.Tiny with { Metric = "manhattan" }).Validate()).Message);
        Assert.Contains("unknown tokenizer preset 'huge'", Assert.Throws<ArgumentException>(() => TokenizerPresets.Get("huge")).Message);
    }
}
