using System.Text.Json;
using Snce.Data;
using Snce.Losses;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Models;

/// <summary><c>--init-embeddings codebook</c>: input token embeddings from a random projection of the codebook.</summary>
public class EmbeddingInitTests
{
    [Fact]
    public void TheProjectionKeepsTheCodebooksGeometryAtTheInitScale()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(3);
        var codebook = randn([64, 16], generator: g) + 5;                         // an offset the centring removes
        var e = CodebookEmbeddings.Project(codebook, 128, 0.02, seed: 7);
        Assert.Equal([64L, 128L], e.shape);
        Assert.Equal(ScalarType.Float32, e.dtype);
        Assert.Equal(0.02, e.to(ScalarType.Float64).std().item<double>(), 6);
        // Pairwise distances: the projection keeps them up to one scale (Johnson–Lindenstrauss: 128 dims, 64 points).
        var dc = cdist(codebook, codebook).flatten();
        var de = cdist(e, e).flatten();
        var r = corrcoef(stack([dc, de])).to(ScalarType.Float64)[0, 1].item<double>();
        Assert.True(r > 0.95, $"distance correlation {r:F3}");
        // A code's nearest other code stays among its 3 nearest embeddings for most codes.
        var nc = (cdist(codebook, codebook) + eye(64) * 1e9).argmin(1);
        var ne = (cdist(e, e) + eye(64) * 1e9).topk(3, largest: false).indexes;
        var kept = ne.eq(nc.unsqueeze(1)).any(1).to(ScalarType.Float32).mean().item<float>();
        Assert.True(kept > 0.8, $"nearest code kept for {kept:P0}");
        // Deterministic per seed; another seed, another projection.
        Assert.True(e.eq(CodebookEmbeddings.Project(codebook, 128, 0.02, seed: 7)).all().item<bool>());
        Assert.False(e.allclose(CodebookEmbeddings.Project(codebook, 128, 0.02, seed: 8)));
    }

    [Fact]
    public void BadCodebooksAreClearErrors()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => CodebookEmbeddings.Project(tensor(new float[] { 1, float.NaN, 2, 3 }).view(2, 2), 8, 0.02, 0)).Message);
        Assert.Contains("all equal", Assert.Throws<ArgumentException>(() => CodebookEmbeddings.Project(ones(4, 3), 8, 0.02, 0)).Message);
        Assert.Contains("[K ≥ 2, D]", Assert.Throws<ArgumentException>(() => CodebookEmbeddings.Project(ones(4), 8, 0.02, 0)).Message);
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void ANewRunStartsFromTheProjectedCodebookAndRecordsIt(GeneratorKind kind)
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var training = GeneratorFixtures.Training(steps: 5) with { Seed = 11 };
        using var scope = NewDisposeScope();
        Tensor Embeddings(EmbeddingInit init, string run)
        {
            using var prepared = RunSetup.New(new NewRun(kind, dir["tokens"], "tiny", new LossSpec(), training, dir[run], EmbeddingInit: init), CPU);
            Assert.Equal(init, prepared.Setup.Model.EmbeddingInit);
            using var trainer = new Trainer(prepared.Setup);
            return trainer.Model.state_dict()["tok_embeddings.weight"].detach().clone();
        }
        var projected = Embeddings(EmbeddingInit.Codebook, "codebook");
        var random = Embeddings(EmbeddingInit.Random, "random");
        using var loaded = TokenShards.Load(dir["tokens"]);
        var k = GeneratorFixtures.K;
        var expected = CodebookEmbeddings.Project(loaded.Codebook, projected.shape[1], GeneratorPresets.Tiny.InitStd, training.Seed);
        Assert.True(projected.narrow(0, 0, k).allclose(expected, rtol: 0, atol: 1e-7));
        Assert.False(random.narrow(0, 0, k).allclose(expected, rtol: 0, atol: 1e-3));
        if (kind == GeneratorKind.Masked)                                        // [MASK] has no code: it keeps the random init
            Assert.True(projected.narrow(0, k, 1).eq(random.narrow(0, k, 1)).all().item<bool>());
    }

    [Fact]
    public void TheManifestNamesItOnlyWhenItIsNotRandomAndOldManifestsReadAsRandom()
    {
        var config = GeneratorFixtures.Config(GeneratorKind.Autoregressive);
        var plain = JsonSerializer.Serialize(config);
        Assert.DoesNotContain("embedding_init", plain);
        Assert.Equal(EmbeddingInit.Random, JsonSerializer.Deserialize<GeneratorConfig>(plain)!.EmbeddingInit);
        var json = JsonSerializer.Serialize(config with { EmbeddingInit = EmbeddingInit.Codebook });
        Assert.Contains("\"embedding_init\":\"codebook\"", json);
        Assert.Equal(EmbeddingInit.Codebook, JsonSerializer.Deserialize<GeneratorConfig>(json)!.EmbeddingInit);
    }

    [Fact]
    public void TheCliTrainsWithItAndRefusesUnknownNames()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        string[] Train(string init, string run) =>
            ["train", "ar", "--tokens", dir["tokens"], "--preset", "tiny", "--batch", "16", "--steps", "4", "--log-every", "2",
             "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", dir[run], "--init-embeddings", init];
        var r = CliRunner.Run(Train("codebook", "run"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(EmbeddingInit.Codebook, GeneratorCheckpoint.ReadManifest(dir["run"]).Model.EmbeddingInit);
        var bad = CliRunner.Run(Train("pca", "bad"));
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("unknown embedding init 'pca'; use one of random, codebook", bad.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir["bad"], "checkpoint")));
    }
}
