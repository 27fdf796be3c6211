using System.Text.Json;
using Snce.Data;
using Snce.Editing;
using Snce.Losses;
using Snce.Models;
using Snce.Sampling;
using Snce.Tests.Support;
using Snce.Tokenizer;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

public class PairedTrainingTests
{
    const int K = GeneratorFixtures.K, T = GeneratorFixtures.Grid * GeneratorFixtures.Grid;

    /// <summary>
    /// Synthetic paired shards: random sources; the target keeps an even source code and maps an odd one c to (c + 3) mod K, so
    /// "copy the source" gets about half the tokens right and only a generator that reads the source prefix does better.
    /// Latents are the target's codes plus noise (what latent-anchored SNCE reads). Rows ≥ count − 48 are held out.
    /// </summary>
    static TokenShards PairedShards(int count = 480, long seed = 11)
    {
        var g = new Generator((ulong)seed);
        var src = randint(K, [count, T], generator: g);
        var odd = src % 2;
        var dst = where(odd == 1, (src + 3) % K, src);
        var codebook = randn([K, 4], generator: g);
        var z = (codebook.index_select(0, dst.reshape(-1)) + 0.05 * randn([count * T, 4], generator: g)).view(count, T, 4).to_type(ScalarType.Float16);
        return new TokenShards
        {
            Info = new TokenShardsInfo
            {
                Tokenizer = "/nonexistent/tokenizer", Data = "synthetic:pairs", CodebookSize = K, CodeDim = 4, Metric = "l2",
                Grid = [GeneratorFixtures.Grid, GeneratorFixtures.Grid], ImageSize = 16, Channels = 1, Count = count, Latents = "full", Pairs = "synthetic:pairs",
            },
            Tokens = dst.to_type(ScalarType.Int32), SourceTokens = src.to_type(ScalarType.Int32), PairNames = [.. Enumerable.Range(0, count).Select(i => $"p{i}")],
            Labels = full(count, -1L), Split = (arange(count) >= count - 48).to_type(ScalarType.Byte), Codebook = codebook, Latents = z,
        };
    }

    [Fact]
    public void TheSourceConditioningIsInTheManifestAndOldManifestsReadAsClassConditional()
    {
        var config = GeneratorFixtures.Config(GeneratorKind.Masked, classes: 0) with { Source = new SourceConditioningConfig(T) };
        var json = JsonSerializer.Serialize(config, GeneratorCheckpoint.JsonOptions);
        Assert.Contains("\"conditioning\": \"source\"", json);
        Assert.Contains("\"tokens\": 16", json);
        Assert.Equal(config, JsonSerializer.Deserialize<GeneratorConfig>(json, GeneratorCheckpoint.JsonOptions));
        using (var model = new TokenGenerator(config))
        {
            Assert.IsType<SourceTokenConditioning>(model.Conditioning);
            Assert.Equal(1 + T, model.Conditioning.PrefixLength);
            Assert.Equal(config.ParameterCount, model.parameters().Sum(p => p.numel()));
        }
        // A manifest of the plain kind (no "source", no "text") rebuilds class conditioning.
        var plain = JsonSerializer.Deserialize<GeneratorConfig>(JsonSerializer.Serialize(GeneratorFixtures.Config(GeneratorKind.Autoregressive), GeneratorCheckpoint.JsonOptions)
            .Replace("\"conditioning\": \"class\",", ""), GeneratorCheckpoint.JsonOptions)!;
        Assert.Null(plain.Source);
        Assert.Equal("class", plain.Conditioning);
        using var dir = new TempDir();
        var run = dir["v1"];
        Directory.CreateDirectory(Path.Combine(run, "checkpoint"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Checkpoints", "v1", "ar-ce.json"), Path.Combine(run, "checkpoint", GeneratorCheckpoint.ManifestFile));
        var old = GeneratorCheckpoint.ReadManifest(run).Model;
        Assert.Null(old.Source);
        Assert.Equal("class", old.Conditioning);
        // Text with the source: an instruction edit (InstructionConditioning), "instruction" in the manifest.
        var instructed = config with { Text = new TextConditioningConfig("e", 8, 4) };
        Assert.Contains("\"conditioning\": \"instruction\"", JsonSerializer.Serialize(instructed, GeneratorCheckpoint.JsonOptions));
        using (var model = new TokenGenerator(instructed)) Assert.IsType<InstructionConditioning>(model.Conditioning);
    }

    [Fact]
    public void PairedShardsRoundTripAndRefuseHalfAPair()
    {
        using var dir = new TempDir();
        using (var shards = PairedShards(count: 60)) shards.Save(dir["p"]);
        using (var loaded = TokenShards.Load(dir["p"]))
        {
            using var again = PairedShards(count: 60);
            Assert.True(loaded.SourceTokens!.Equals(again.SourceTokens!));
            Assert.Equal(again.PairNames, loaded.PairNames);
            Assert.Equal("synthetic:pairs", loaded.Info.Pairs);
        }
        File.Delete(Path.Combine(dir["p"], TokenShards.SourceTokensFile));
        Assert.Contains(TokenShards.SourceTokensFile, Assert.ThrowsAny<Exception>(() => TokenShards.Load(dir["p"])).Message);
        using var plain = GeneratorFixtures.Shards();
        var half = new TokenShards { Info = plain.Info, Tokens = plain.Tokens, Labels = plain.Labels, Split = plain.Split, Codebook = plain.Codebook, SourceTokens = plain.Tokens };
        Assert.Contains("without a 'pairs' entry", Assert.Throws<InvalidDataException>(() => half.Save(dir["half"])).Message);
    }

    [Fact]
    public void PairedTokenizingGivesEachSideItsOwnTokensAndTheTargetsLatents()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var config = new TokenizerConfig { ImageSize = 16, Channels = 1, BaseChannels = 8, ChannelMultipliers = [1, 2, 2], NormGroups = 4, CodeDim = 4, CodebookSize = K }.Validate();
        using var tok = new VqTokenizer(config);
        var g = new Generator(3);
        var src = randint(256, [6, 1, 16, 16], generator: g).to_type(ScalarType.Byte);
        var dst = (255 - src.to_type(ScalarType.Int32)).to_type(ScalarType.Byte);
        using var pairs = new ImagePairs(src, dst, ["a", "b", "c", "d", "e", "f"], new string?[6], tensor(new byte[] { 0, 0, 0, 0, 1, 1 }));
        using var dir = new TempDir();
        var result = PairedData.Tokenize(tok, pairs, dir.Path, new TokenizeOptions { NeighborsK = 4, Latents = LatentStorage.Full }, "x:y");
        using var shards = result.Shards;
        tok.eval();
        using (no_grad())
        {
            Assert.True(shards.Tokens.to_type(ScalarType.Int64).Equals(tok.Tokenize(ImageDataset.ToModelRange(dst)).to_type(ScalarType.Int64)));
            Assert.True(shards.SourceTokens!.to_type(ScalarType.Int64).Equals(tok.Tokenize(ImageDataset.ToModelRange(src)).to_type(ScalarType.Int64)));
            Assert.True(shards.Latents!.to_type(ScalarType.Float32).allclose(tok.Latents(ImageDataset.ToModelRange(dst)).to_type(ScalarType.Float16).to_type(ScalarType.Float32)));
        }
        Assert.Equal("x:y", shards.Info.Pairs);
        Assert.Equal(["a", "b", "c", "d", "e", "f"], shards.PairNames!);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 1, 1 }, shards.Split.data<byte>().ToArray());
        Assert.True((shards.Labels == -1).all().item<bool>());
    }

    /// <summary>Trains a paired run with <paramref name="loss"/> through RunSetup and the Trainer, reloads it from its checkpoint and returns greedy held-out token accuracy and the copy baseline's.</summary>
    static (double Generated, double Copy) TrainAndScore(GeneratorKind kind, LossSpec loss, long steps)
    {
        using var dir = new TempDir();
        using (var shards = PairedShards()) shards.Save(dir["pairs"]);
        var training = new TrainingConfig
        {
            Steps = steps, Batch = 32, Lr = 3e-3, WarmupSteps = 20, LogEvery = 100, ValidateEvery = 0, ValidationBatches = 1, CheckpointEvery = 10_000, EmaDecay = 0.9, Seed = 1,
        };
        using (var run = RunSetup.New(new NewRun(kind, dir["pairs"], "tiny", loss, training, dir["run"]), CPU))
        {
            Assert.Equal(new SourceConditioningConfig(T), run.Setup.Model.Source);
            Assert.Equal(0, run.Setup.Model.NumClasses);
            using var trainer = new Trainer(run.Setup);
            Assert.Equal(StopReason.Completed, trainer.Run(new RunLimits()).Reason);
        }
        var (model, manifest) = GeneratorCheckpoint.LoadModel(dir["run"], CPU);
        using var m = model;
        Assert.Equal("source", manifest.Model.Conditioning);
        Assert.IsType<SourceTokenConditioning>(m.Conditioning);
        Assert.Equal("synthetic:pairs", manifest.Data.Pairs);
        using var scope = NewDisposeScope();
        using var held = TokenShards.Load(dir["pairs"]);
        var rows = held.IndicesOf(TokenShards.ValidationSplit);
        var source = held.SourceTokens!.index_select(0, rows).to_type(ScalarType.Int64);
        var target = held.Tokens.index_select(0, rows).to_type(ScalarType.Int64);
        var options = new GeneratorSamplingOptions(new TokenSamplingOptions(Temperature: 0), CfgScale: 1, Steps: 4);
        var generated = GeneratorSampler.Sample(m, ImageTranslation.Conditions(m, source), options, new Generator(5));
        return (Snce.Evaluation.TranslationQuality.TokenAccuracy(generated, target).mean().item<float>(),
            Snce.Evaluation.TranslationQuality.TokenAccuracy(source, target).mean().item<float>());
    }

    [Theory]
    [InlineData("ar", "ce")]
    [InlineData("mask", "ce")]
    [InlineData("ar", "snce")]
    public void APairedGeneratorBeatsCopyingTheSourceOnHeldOutPairs(string kind, string loss)
    {
        // SNCE anchored at the target's codes (the latent anchor reads the target's latents the same way, see
        // PairedTokenizingGivesEachSideItsOwnTokensAndTheTargetsLatents; here it costs ~8× CE per step, too slow for this test).
        var spec = loss == "ce" ? new LossSpec() : new LossSpec { Kind = LossKind.Snce, Tau = 0.5, Anchor = NeighborAnchor.Code };
        var (generated, copy) = TrainAndScore(GeneratorKinds.Parse(kind), spec, steps: 300);
        Assert.InRange(copy, 0.4, 0.6);
        Assert.True(generated > copy + 0.2, $"{kind}/{loss}: held-out target-token accuracy {generated:P1}, copying the source {copy:P1}");
    }

    [Fact]
    public void PlainShardsDoNotResumeAPairedRunNorPairedShardsAClassRun()
    {
        using var dir = new TempDir();
        using var paired = PairedShards(count: 60);
        using var plain = GeneratorFixtures.Shards();
        var source = GeneratorFixtures.Config(GeneratorKind.Masked, classes: 0) with { Source = new SourceConditioningConfig(T) };
        Assert.Contains("holds plain shards", Assert.Throws<ArgumentException>(() => RunSetup.CheckCompatible(source, plain.Info, "plain", "run")).Message);
        Assert.Contains("holds paired shards", Assert.Throws<ArgumentException>(() => RunSetup.CheckCompatible(GeneratorFixtures.Config(GeneratorKind.Masked), paired.Info, "paired", "run")).Message);
    }
}
