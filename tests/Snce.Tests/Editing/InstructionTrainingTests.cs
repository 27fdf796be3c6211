using Snce.Data;
using Snce.Editing;
using Snce.Losses;
using Snce.Models;
using Snce.Sampling;
using Snce.Tests.Support;
using Snce.Text;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

/// <summary>One paired generator trained on two instructions at once: only the instruction says which edit to make.</summary>
public class InstructionTrainingTests
{
    const int K = GeneratorFixtures.K, T = GeneratorFixtures.Grid * GeneratorFixtures.Grid, E = 8, Count = 480, HeldOut = 48;

    /// <summary>
    /// Synthetic paired shards with instructions: random sources; pair i's instruction is i mod 2, and instruction 0 maps every source code c
    /// to (c + 3) mod K, instruction 1 to (c + 7) mod K. So a generator that ignores the instruction can be right on about half the pairs at
    /// best; the instructions are two fixed random "encoder outputs" (E = 8, 2 and 3 word pieces), stored as caption shards.
    /// </summary>
    static void Save(string dir)
    {
        var g = new Generator(13);
        var src = randint(K, [Count, T], generator: g);
        var which = arange(Count) % 2;
        var dst = where(which.unsqueeze(1) == 0, (src + 3) % K, (src + 7) % K);
        var codebook = randn([K, 4], generator: g);
        using (var shards = new TokenShards
        {
            Info = new TokenShardsInfo
            {
                Tokenizer = "/nonexistent/tokenizer", Data = "synthetic:instructions", CodebookSize = K, CodeDim = 4, Metric = "l2",
                Grid = [GeneratorFixtures.Grid, GeneratorFixtures.Grid], ImageSize = 16, Channels = 1, Count = Count, Latents = "none", Pairs = "synthetic:instructions",
            },
            Tokens = dst.to_type(ScalarType.Int32), SourceTokens = src.to_type(ScalarType.Int32), PairNames = [.. Enumerable.Range(0, Count).Select(i => $"p{i}")],
            Labels = full(Count, -1L), Split = (arange(Count) >= Count - HeldOut).to_type(ScalarType.Byte), Codebook = codebook,
        }) shards.Save(dir);
        var tokens = randn([2, 3, E], generator: g);
        tokens[0, 2] = zeros(E);                                                                   // the first instruction has 2 word pieces
        using var captions = new CaptionShards
        {
            Info = new CaptionShardsInfo
            {
                Encoder = "test-encoder", EncoderDim = E, MaxTokens = 4, Source = PairInstructions.Source, Captions = ["add three", "add seven"],
                Train = [.. Enumerable.Range(0, Count).Select(i => new[] { i % 2 })], HeldOut = [.. Enumerable.Range(0, Count).Select(_ => Array.Empty<int>())],
            },
            Tokens = tokens.to_type(ScalarType.Float16), Lengths = tensor(new long[] { 2, 3 }), Pooled = randn([2, E], generator: g),
        };
        captions.Save(dir);
    }

    [Theory]
    [InlineData("ar")]
    [InlineData("mask")]
    public void One_generator_follows_two_instructions_on_held_out_sources(string kind)
    {
        using var dir = new TempDir();
        Save(dir["pairs"]);
        var training = new TrainingConfig
        {
            Steps = 300, Batch = 32, Lr = 3e-3, WarmupSteps = 20, LogEvery = 100, ValidateEvery = 0, ValidationBatches = 1, CheckpointEvery = 10_000, EmaDecay = 0.9, Seed = 1,
        };
        using (var run = RunSetup.New(new NewRun(GeneratorKinds.Parse(kind), dir["pairs"], "tiny", new LossSpec(), training, dir["run"], Text: true), CPU))
        {
            Assert.Equal("instruction", run.Setup.Model.Conditioning);
            using var trainer = new Trainer(run.Setup);
            Assert.Equal(StopReason.Completed, trainer.Run(new RunLimits()).Reason);
        }
        var (model, manifest) = GeneratorCheckpoint.LoadModel(dir["run"], CPU);
        using var m = model;
        Assert.IsType<InstructionConditioning>(m.Conditioning);
        using var scope = NewDisposeScope();
        using var shards = TokenShards.Load(dir["pairs"]);
        using var captions = CaptionShards.Load(dir["pairs"], Count);
        var rows = shards.IndicesOf(TokenShards.ValidationSplit);
        var source = shards.SourceTokens!.index_select(0, rows).to_type(ScalarType.Int64);
        var target = shards.Tokens.index_select(0, rows).to_type(ScalarType.Int64);
        var own = rows % 2;                                                                        // each held-out pair's instruction id
        var swapped = 1 - own;
        using var text = new TextConditions(captions, arange(Count), 4, CPU);
        double Accuracy(Tensor instruction, double cfg, Tensor expected)
        {
            var options = new GeneratorSamplingOptions(new TokenSamplingOptions(Temperature: 0), CfgScale: cfg, Steps: 4);
            var generated = GeneratorSampler.Sample(m, ImageTranslation.Conditions(m, source, text.Of(instruction)), options, new Generator(5));
            return Snce.Evaluation.TranslationQuality.TokenAccuracy(generated, expected).mean().item<float>();
        }
        var right = Accuracy(own, 1, target);
        // The other instruction on the same sources gives the other edit: (c + 7) for pairs of instruction 0 and (c + 3) for those of 1.
        var otherTarget = where(own.unsqueeze(1) == 0, (source + 7) % K, (source + 3) % K);
        var asInstructed = Accuracy(swapped, 1, otherTarget);
        Assert.True(right > 0.8, $"{kind}: held-out target-token accuracy under each pair's own instruction {right:P1}");
        Assert.True(asInstructed > 0.8, $"{kind}: under the swapped instruction the edit follows it on {asInstructed:P1} of the tokens");
        Assert.True(Accuracy(swapped, 1, target) < 0.2, $"{kind}: the swapped instruction must not give the pair's own target");
        // Classifier-free guidance over the instruction (trained with --cfg-dropout 0.1, the default) samples and keeps following it.
        var guided = Accuracy(own, 3, target);
        Assert.True(guided > 0.8, $"{kind}: with --cfg 3 over the instruction: {guided:P1}");
    }

    [Fact]
    public void Paired_shards_without_instructions_say_how_to_make_them()
    {
        using var dir = new TempDir();
        Save(dir["pairs"]);
        File.Delete(Path.Combine(dir["pairs"], CaptionShards.InfoFile));
        var e = Assert.Throws<ArgumentException>(() => RunSetup.New(new NewRun(GeneratorKind.Masked, dir["pairs"], "tiny", new LossSpec(), GeneratorFixtures.Training(), dir["run"], Text: true), CPU));
        Assert.Contains("without instructions", e.Message);
        Assert.Contains("--text", e.Message);
    }
}
