using Snce.Data;
using Snce.Losses;
using Snce.Models;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Support;

/// <summary>
/// Plain cross-entropy as an <see cref="ITokenLoss"/>, for the generator tests only (the product's losses come
/// from the Losses area). Loss = Σ m·w·ℓ / Σ m as the contract says.
/// </summary>
public sealed class TestCrossEntropy : ITokenLoss
{
    public string Name => "ce";

    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var nll = -logits.to_type(ScalarType.Float32).log_softmax(-1).gather(1, targets.Tokens.unsqueeze(1)).squeeze(1);
        var m = targets.Mask?.to_type(ScalarType.Float32) ?? ones_like(nll);
        var w = targets.Weights ?? ones_like(nll);
        var count = m.sum().clamp_min(1);
        var loss = (nll * m * w).sum() / count;
        var hard = ((nll * m).sum() / count).detach();
        return new LossOutput(loss.MoveToOuterDisposeScope(), hard.MoveToOuterDisposeScope(), null);
    }
}

/// <summary>Tiny synthetic token data and configs shared by the generator tests.</summary>
public static class GeneratorFixtures
{
    public const int K = 16, Grid = 4, Classes = 4;

    /// <summary>A tiny generator config (2 layers, d 64) on a 4×4 grid with K = 16 and 4 classes.</summary>
    public static GeneratorConfig Config(GeneratorKind kind, int k = K, int classes = Classes) =>
        new(kind, "tiny", GeneratorPresets.Tiny, k, Grid, Grid, classes);

    /// <summary>
    /// Learnable synthetic token images: image m of class c has x_i = (3c + i + noise) mod K, noise ∈ {0, 1}
    /// with probability 0.1. 64 train rows, 16 validation rows.
    /// </summary>
    public static TokenShards Shards(int count = 80, int k = K, long seed = 5, bool latents = false, string tokenizer = "/nonexistent/tokenizer")
    {
        var g = new Generator((ulong)seed);
        var t = Grid * Grid;
        var labels = randint(Classes, [count], generator: g);
        var pos = arange(t).unsqueeze(0);
        var noise = (rand([count, t], generator: g) < 0.1).to_type(ScalarType.Int64);
        var tokens = ((labels.unsqueeze(1) * 3 + pos + noise) % k).to_type(ScalarType.Int32);
        var split = (arange(count) >= count - 16).to_type(ScalarType.Byte);
        var codebook = randn([k, 4], generator: g);
        // Latents: each token's code plus a little noise (the tokens stay their nearest codes for this noise level).
        var z = latents ? (codebook.index_select(0, tokens.reshape(-1).to_type(ScalarType.Int64)) + 0.05 * randn([count * t, 4], generator: g))
            .view(count, t, 4).to_type(ScalarType.Float16) : null;
        return new TokenShards
        {
            Info = new TokenShardsInfo
            {
                Tokenizer = tokenizer, Data = "synthetic", CodebookSize = k, CodeDim = 4, Metric = "l2",
                Grid = [Grid, Grid], ImageSize = 16, Channels = 3, Classes = ["a", "b", "c", "d"], Count = count,
                Latents = latents ? "full" : "none",
            },
            Tokens = tokens,
            Labels = labels,
            Split = split,
            Codebook = codebook,
            Latents = z,
        };
    }

    /// <summary>
    /// Saves an untrained tiny tokenizer (16 px gray images, two downsamples → 4×4 tokens, K = 16, what <see cref="Shards"/>
    /// uses) to <paramref name="tokenizerDir"/> and shards that name it to <paramref name="tokensDir"/>: enough for sample/eval plumbing.
    /// </summary>
    public static void SaveTokenizerAndShards(string tokenizerDir, string tokensDir, long? seed = null)
    {
        if (seed is { } s) manual_seed(s);                               // another (untrained) tokenizer with the same shape
        var config = new Snce.Tokenizer.TokenizerConfig
        {
            ImageSize = 16, Channels = 1, BaseChannels = 8, ChannelMultipliers = [1, 2, 2], NormGroups = 4, CodeDim = 4, CodebookSize = K,
        }.Validate();
        using (var tok = new Snce.Tokenizer.VqTokenizer(config)) Snce.Tokenizer.TokenizerCheckpoint.Save(tokenizerDir, tok);
        using var shards = Shards(tokenizer: tokenizerDir);
        // As 'snce tokenize' does: the shards name the tokenizer's identity.
        using var named = new TokenShards
        {
            Info = shards.Info with { TokenizerSha256 = Snce.Tokenizer.TokenizerCheckpoint.Identity(tokenizerDir) },
            Tokens = shards.Tokens.alias(), Labels = shards.Labels.alias(), Split = shards.Split.alias(), Codebook = shards.Codebook.alias(),
        };
        named.Save(tokensDir);
    }

    /// <summary>A trainer setup on the CPU with test CE.</summary>
    public static TrainerSetup Setup(GeneratorKind kind, TokenShards shards, string runDir, TrainingConfig training) =>
        new(Config(kind, (int)shards.Info.CodebookSize), training, new ResolvedLoss { Kind = LossKind.CrossEntropy }, () => new TestCrossEntropy(),
            new TokenDataset(shards, TokenShards.TrainSplit, CPU, withLatents: false),
            new TokenDataset(shards, TokenShards.ValidationSplit, CPU, withLatents: false),
            new GeneratorDataInfo { Tokens = "synthetic", Tokenizer = shards.Info.Tokenizer, Metric = "l2", CodeDim = 4, Classes = shards.Info.Classes },
            runDir, CPU);

    /// <summary>
    /// A generator built after seeding the global generator with <paramref name="seed"/>, its (zero-initialized) output
    /// head drawn from N(0, <paramref name="std"/>²), so its logits depend on every input.
    /// </summary>
    public static TokenGenerator RandomHead(GeneratorConfig config, int seed, double std = 0.5)
    {
        random.manual_seed(seed);
        var m = new TokenGenerator(config);
        using (no_grad()) nn.init.normal_(m.OutputWeight, 0, std);
        return m;
    }

    /// <summary>
    /// An autoregressive generator's logits for <paramref name="tokens"/> [B, T] decoded through its KV cache one token
    /// at a time: the condition's prefix first, then tokens 0..T−2. [B, T, K], what <c>Forward(cond, tokens[:, :T−1])</c> gives.
    /// </summary>
    public static Tensor DecodeTokenByToken(TokenGenerator model, Tensor cond, Tensor tokens)
    {
        var (b, t) = (tokens.shape[0], tokens.shape[1]);
        using var cache = model.NewCache(b);
        var steps = new List<Tensor> { model.Decode(cond, zeros(b, 0, dtype: ScalarType.Int64), cache) };
        for (var i = 0; i < t - 1; i++) steps.Add(model.Decode(null, tokens.narrow(1, i, 1), cache));
        return stack(steps, 1);
    }

    /// <summary>A short training config for tests.</summary>
    public static TrainingConfig Training(long steps = 40, int batch = 16) => new()
    {
        Steps = steps, Batch = batch, Lr = 3e-3, WarmupSteps = 5, LogEvery = 10, ValidateEvery = 0, ValidationBatches = 1,
        CheckpointEvery = 1000, EmaDecay = 0.9, Seed = 3,
    };
}
