using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.Losses;

namespace Snce.Tokenizer;

/// <summary>How the codebook learns: IBQ index backpropagation or EMA k-means updates with dead-code restarts.</summary>
public enum QuantizerKind
{
    /// <summary>Index backpropagation (IBQ, Shi et al. 2024): straight-through over a softmax on all codes; the codebook is trained by the optimizer.</summary>
    Ibq,
    /// <summary>Exponential-moving-average codebook (van den Oord et al. 2017, appendix; Razavi et al. 2019) with dead-code restarts.</summary>
    Ema,
}

/// <summary>
/// Everything that defines a VQ tokenizer's architecture and quantizer. Stored in every checkpoint
/// (config.json), so a checkpoint alone rebuilds the model.
/// </summary>
/// <remarks>
/// Token grid: the image is padded (edge replication) to <see cref="WorkSize"/>, the image size rounded up to a
/// multiple of max(16, 2^downsamples), and halved once per downsample. With the presets' two downsamples,
/// 28 px (MNIST, Fashion-MNIST) → 32 → 8×8 tokens, 32 px → 8×8, 64 px (emoji) → 16×16; one downsample gives
/// 16×16 tokens for 28/32 px. The decoder's output is cropped back to <see cref="ImageSize"/>.
/// </remarks>
public sealed record TokenizerConfig
{
    /// <summary>Input images are square, ImageSize × ImageSize pixels.</summary>
    public int ImageSize { get; init; } = 32;
    /// <summary>1 (gray) or 3 (RGB).</summary>
    public int Channels { get; init; } = 1;
    /// <summary>Channels of the first level; level i has BaseChannels × ChannelMultipliers[i].</summary>
    public int BaseChannels { get; init; } = 64;
    /// <summary>One entry per resolution level; a stride-2 downsample sits between consecutive levels.</summary>
    public int[] ChannelMultipliers { get; init; } = [1, 2, 2];
    /// <summary>Residual blocks per level (encoder and decoder each).</summary>
    public int ResBlocksPerLevel { get; init; } = 1;
    /// <summary>GroupNorm groups; must divide every level's channel count.</summary>
    public int NormGroups { get; init; } = 32;
    /// <summary>Code (latent) dimension D.</summary>
    public int CodeDim { get; init; } = 64;
    /// <summary>Codebook size K.</summary>
    public int CodebookSize { get; init; } = 16384;
    /// <summary>The dissimilarity d(z, c) of <see cref="Losses.Metric"/>: l2, dot or cosine.</summary>
    public string Metric { get; init; } = "l2";
    /// <summary>How the codebook is trained (default EMA: in the CPU measurements of docs/tokenizers.md it reconstructs best and uses the most codes).</summary>
    public QuantizerKind Quantizer { get; init; } = QuantizerKind.Ema;
    /// <summary>β of the commitment loss β‖z − sg(c)‖².</summary>
    public double CommitmentWeight { get; init; } = 0.25;
    /// <summary>Weight of the codebook loss ‖sg(z) − c‖² (IBQ only; EMA moves codes without a loss).</summary>
    public double CodebookWeight { get; init; } = 1.0;
    /// <summary>
    /// IBQ codebook init: false = uniform in ±1/K as IBQ does (all logits start near 0, so the softmax spreads gradient
    /// over every code); true = random latents of the first training batch (codes start at the latents' scale).
    /// The EMA quantizer always starts from data.
    /// </summary>
    public bool IbqDataInit { get; init; }
    /// <summary>IBQ softmax temperature τ_q: logits = −d(z, c)/τ_q over all codes.</summary>
    public double IbqTemperature { get; init; } = 1.0;
    /// <summary>
    /// IBQ only: weight of the code-entropy loss mean_i H(p_i) − H(mean_i p_i) over p = softmax(−d/τ_q) on all codes
    /// (low per-token entropy, high entropy of average usage; MAGVIT-v2 / IBQ). Keeps the dot metric from collapsing onto a few codes.
    /// </summary>
    public double EntropyWeight { get; init; } = 0.1;
    /// <summary>
    /// IBQ backward: rows per block of the recomputed softmax (memory ≈ 4 × rows × K × 4 bytes).
    /// 0 = choose from a budget of 2^26 elements per block; −1 = dense autograd over the whole [N, K] matrix (reference).
    /// </summary>
    public int IbqRowChunk { get; init; }
    /// <summary>EMA decay λ of cluster sizes and sums.</summary>
    public double EmaDecay { get; init; } = 0.99;
    /// <summary>Laplace smoothing ε of EMA cluster sizes.</summary>
    public double EmaEpsilon { get; init; } = 1e-5;
    /// <summary>A code is dead (EMA restarts it from a recent encoder output) when unused for max(this, ⌈8K/N⌉) steps, N = tokens per step.</summary>
    public int RestartMinSteps { get; init; } = 50;

    /// <summary>Number of stride-2 downsamples.</summary>
    [JsonIgnore] public int Downsamples => ChannelMultipliers.Length - 1;
    /// <summary>The padded size the network sees: ImageSize rounded up to a multiple of max(16, 2^Downsamples).</summary>
    [JsonIgnore] public int WorkSize { get { var m = Math.Max(16, 1 << Downsamples); return (ImageSize + m - 1) / m * m; } }
    /// <summary>Token grid side: WorkSize / 2^Downsamples.</summary>
    [JsonIgnore] public int GridSize => WorkSize >> Downsamples;
    /// <summary>Tokens per image (GridSize²).</summary>
    [JsonIgnore] public int TokensPerImage => GridSize * GridSize;
    /// <summary>The parsed metric.</summary>
    [JsonIgnore] public Metric MetricObject => Losses.Metric.Parse(Metric);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value and the allowed range.</summary>
    public TokenizerConfig Validate()
    {
        static void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        Check(ImageSize >= 8, $"image size must be at least 8 pixels, got {ImageSize}");
        Check(Channels is 1 or 3, $"channels must be 1 (gray) or 3 (RGB), got {Channels}");
        Check(CodebookSize >= 2 && CodebookSize <= 1 << 20, $"codebook size must be in [2, 1048576], got {CodebookSize}");
        Check(CodeDim >= 1 && CodeDim <= 4096, $"code dimension must be in [1, 4096], got {CodeDim}");
        Check(ChannelMultipliers.Length is >= 1 and <= 6, $"channel multipliers need 1 to 6 levels, got {ChannelMultipliers.Length}");
        Check(ChannelMultipliers.All(m => m >= 1), "channel multipliers must be ≥ 1");
        Check(BaseChannels >= 1 && ResBlocksPerLevel >= 1, $"base channels and res blocks per level must be ≥ 1, got {BaseChannels} and {ResBlocksPerLevel}");
        Check(NormGroups >= 1 && ChannelMultipliers.All(m => BaseChannels * m % NormGroups == 0),
            $"norm groups ({NormGroups}) must divide every level's channels ({string.Join(", ", ChannelMultipliers.Select(m => BaseChannels * m))})");
        Check(CommitmentWeight >= 0 && CodebookWeight >= 0 && EntropyWeight >= 0, "loss weights must be ≥ 0");
        Check(IbqTemperature > 0, $"IBQ temperature must be > 0, got {IbqTemperature}");
        Check(IbqRowChunk >= -1, $"IBQ row chunk must be −1 (dense), 0 (auto) or a row count, got {IbqRowChunk}");
        Check(EmaDecay is >= 0 and < 1, $"EMA decay must be in [0, 1), got {EmaDecay}");
        Check(EmaEpsilon > 0, $"EMA epsilon must be > 0, got {EmaEpsilon}");
        Check(RestartMinSteps >= 1, $"restart window must be ≥ 1 step, got {RestartMinSteps}");
        _ = MetricObject;
        return this;
    }

    /// <summary>Value equality including the multiplier list (records compare arrays by reference).</summary>
    public bool Equals(TokenizerConfig? other) =>
        other is not null && ToJson() == other.ToJson();

    /// <inheritdoc/>
    public override int GetHashCode() => ToJson().GetHashCode(StringComparison.Ordinal);

    static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The config as indented snake_case JSON (what config.json holds).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses config.json text; fails on malformed JSON or invalid values.</summary>
    public static TokenizerConfig FromJson(string json, string where = "config.json")
    {
        try
        {
            return (JsonSerializer.Deserialize<TokenizerConfig>(json, JsonOptions)
                ?? throw new InvalidDataException($"{where} is empty")).Validate();
        }
        catch (JsonException e) { throw new InvalidDataException($"{where} is not a tokenizer config ({e.Message})"); }
        catch (ArgumentException e) { throw new InvalidDataException($"{where}: {e.Message}"); }
    }
}
