using Snce.Data;
using Snce.Losses;
using Snce.Tests.Support;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Tests.Tokenizer;

public class DatasetTokenizerTests : SingleThreadTests
{
    [Theory]
    [InlineData(LatentStorage.Full, "l2")]
    [InlineData(LatentStorage.TopK, "dot")]
    [InlineData(LatentStorage.None, "cosine")]
    public void ShardsLoadAndHoldWhatTheTokenizerComputes(LatentStorage latents, string metric)
    {
        using var dir = new TempDir();
        using var data = MnistSample.Load();
        manual_seed(6);
        using var model = new VqTokenizer(TokenizerTestModels.Micro(QuantizerKind.Ibq, metric));
        using (no_grad()) model.Quantizer.Codebook.copy_(randn(64, 8));
        model.eval();
        const int k = 5;
        var result = DatasetTokenizer.Tokenize(model, data, dir["tok"], new TokenizeOptions { NeighborsK = k, Latents = latents, BatchSize = 100 });
        using (var written = result.Shards) written.Save(dir["shards"]);
        using var shards = TokenShards.Load(dir["shards"]);
        using var scope = NewDisposeScope();
        var info = shards.Info;
        Assert.Equal((250, 64, 64, 8, metric), (info.Count, info.SequenceLength, info.CodebookSize, info.CodeDim, info.Metric));
        Assert.Equal(k, info.NeighborsK);
        Assert.Equal(latents.ToString().ToLowerInvariant(), info.Latents);
        Assert.True(shards.Labels.eq(data.Labels).all().item<bool>());
        Assert.True(shards.Split.eq(data.Split).all().item<bool>());
        var x = ImageDataset.ToModelRange(data.Images);
        Assert.True(shards.Tokens.to(ScalarType.Int64).eq(model.Tokenize(x)).all().item<bool>());
        Assert.True(shards.Codebook.allclose(model.Quantizer.Codes().detach()));
        // The code-anchored table is each code's k nearest codes by the metric, as a dense computation finds them.
        var (denseDist, denseIds) = model.Quantizer.Metric.Distance(shards.Codebook, shards.Codebook).topk(k, dim: 1, largest: false, sorted: true);
        Assert.True(shards.CodeNeighborDist!.allclose(denseDist, rtol: 1e-5, atol: 1e-5));
        Assert.True(shards.CodeNeighborIds!.to(ScalarType.Int64).eq(denseIds).all().item<bool>());
        var z = model.Latents(x).detach();                                       // [250, 64, 8]
        Assert.Equal(64L * 4, info.BytesPerImage["tokens"]);
        switch (latents)
        {
            case LatentStorage.Full:
                Assert.True(shards.Latents!.to(ScalarType.Float32).allclose(z, rtol: 2e-3, atol: 2e-3));
                Assert.Equal(64L * 8 * 2, info.BytesPerImage["latents"]);
                break;
            case LatentStorage.TopK:
                var (latentDist, latentIds) = model.Quantizer.Metric.Distance(z.flatten(0, 1), shards.Codebook).topk(k, dim: 1, largest: false, sorted: true);
                Assert.True(shards.LatentNeighborIds!.to(ScalarType.Int64).flatten(0, 1).eq(latentIds).all().item<bool>());
                Assert.True(shards.LatentNeighborDist!.flatten(0, 1).allclose(latentDist, rtol: 1e-4, atol: 1e-4));
                Assert.True(shards.LatentNeighborIds!.select(2, 0).eq(shards.Tokens).all().item<bool>(), "the nearest code of each latent is its token");
                Assert.Equal(64L * k * 8, info.BytesPerImage["latent_neighbors"]);
                break;
            default:
                Assert.Null(shards.Latents);
                Assert.Null(shards.LatentNeighborIds);
                break;
        }
    }

    [Fact]
    public void MismatchedImagesFailClearly()
    {
        using var dir = new TempDir();
        using var data = MnistSample.Load();
        using var model = new VqTokenizer(TokenizerTestModels.Micro() with { ImageSize = 32 });
        var e = Assert.Throws<ArgumentException>(() => DatasetTokenizer.Tokenize(model, data, dir.Path, new TokenizeOptions()));
        Assert.Contains("32×32", e.Message);
        Assert.Contains("28×28", e.Message);
    }
}
