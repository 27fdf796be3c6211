using Snce.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// What one training step hands the tokenizer: the 1-based step number. Random draws inside the step (EMA restarts) use
/// the device's default generator, which the trainer seeds from (seed, step) before each step. (An explicit
/// <c>torch.Generator</c> cannot be used: TorchSharp 0.107 creates it on the CPU whatever device it is given.)
/// </summary>
public sealed record TrainingStep(long Step);

/// <summary>
/// A quantizer's result for latents z [N, D]: <paramref name="Quantized"/> [N, D] goes to the decoder (its value is
/// the selected code vectors, its gradient path depends on the quantizer), <paramref name="Indices"/> [N] int64,
/// <paramref name="Loss"/> a scalar (codebook + commitment terms).
/// </summary>
public sealed record QuantizerOutput(Tensor Quantized, Tensor Indices, Tensor Loss);

/// <summary>
/// A codebook of K code vectors and the quantization rule argmin_k d(z, c_k), with d the tokenizer's
/// <see cref="Losses.Metric"/> (the one definition shared with the SNCE loss). Tracks, per code, the last training
/// step that selected it, which gives the training-time utilization and the EMA quantizer's dead codes.
/// </summary>
/// <remarks>
/// For the cosine metric the quantizer works on the unit sphere: latents and codes are L2-normalized before
/// distances, lookups and losses, so the decoder receives unit vectors (as in ViT-VQGAN, Yu et al. 2022).
/// For the dot metric the codes are unit vectors and the latents keep their length: argmax_k z·c_k over codes of free
/// length has no bounded optimum (a longer code in a similar direction wins every comparison, so the codes that win
/// grow, the latents follow them through the commitment loss and both race in norm; measured in docs/tokenizers.md).
/// With ‖c_k‖ = 1 the selected code is the one nearest in direction, and ‖z‖ only sharpens the soft targets
/// softmax(z·c/τ) that IBQ and SNCE compute.
/// </remarks>
public abstract class VectorQuantizer : nn.Module<Tensor, TrainingStep?, QuantizerOutput>
{
    /// <summary>int64 [K]: the last training step that selected each code (0 = never).</summary>
    private readonly Tensor last_used;

    /// <summary>Registers the usage buffer (all codes never used) under module name <paramref name="name"/>; subclasses own the codebook.</summary>
    protected VectorQuantizer(string name, TokenizerConfig config) : base(name)
    {
        Config = config;
        Metric = config.MetricObject;
        last_used = zeros(config.CodebookSize, dtype: ScalarType.Int64);
        register_buffer(nameof(last_used), last_used); // registered here: RegisterComponents in subclasses does not see private base fields
    }

    /// <summary>The tokenizer configuration the quantizer was built from.</summary>
    public TokenizerConfig Config { get; }
    /// <summary>The code distance d(z, c) of quantization (the same object the SNCE loss uses).</summary>
    public Metric Metric { get; }
    /// <summary>K, the number of codes.</summary>
    public int CodebookSize => Config.CodebookSize;
    /// <summary>D, the length of a code vector.</summary>
    public int CodeDim => Config.CodeDim;

    bool IsCosine => ReferenceEquals(Metric, Metric.Cosine);

    /// <summary>True for the dot metric: unit codes, latents of free length (see the remarks).</summary>
    protected bool IsDot => ReferenceEquals(Metric, Metric.Dot);

    /// <summary>True when the effective codes are l2-normalized: cosine and dot.</summary>
    bool UnitCodes => IsCosine || IsDot;

    /// <summary>The stored codebook [K, D] (a parameter for IBQ, a buffer for EMA). Do not dispose it.</summary>
    public abstract Tensor Codebook { get; }

    /// <summary>int64 [K]: last training step that selected each code (0 = never). Do not dispose it.</summary>
    public Tensor LastUsed => last_used;

    /// <summary>The effective code vectors [K, D]: what the decoder receives and token shards store (unit norm when <see cref="UnitCodes"/>). A new tensor (differentiable view).</summary>
    public Tensor Codes() => UnitCodes ? nn.functional.normalize(Codebook, p: 2, dim: 1, eps: 1e-12) : Codebook.alias();

    /// <summary>Latents as the quantizer sees them (unit norm for cosine): z [N, D] → [N, D].</summary>
    public Tensor Prepare(Tensor z) => IsCosine ? nn.functional.normalize(z, p: 2, dim: 1, eps: 1e-12) : z.alias();

    /// <summary>The quantization rule argmin_k d(z, c_k), chunked (fits K = 262,144): z [N, D] → [N] int64.</summary>
    public Tensor Indices(Tensor z)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return Metric.Quantize(Prepare(z), Codes()).MoveToOuterDisposeScope();
    }

    /// <summary>Code vectors for indices of any shape [...] → [..., D].</summary>
    public Tensor Lookup(Tensor indices)
    {
        using var scope = NewDisposeScope();
        var flat = Codes().index_select(0, indices.flatten().to(ScalarType.Int64));
        return flat.view([.. indices.shape, CodeDim]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Steps a code may go unselected before it counts as unused: max(RestartMinSteps, ⌈8K/N⌉) for N tokens per step,
    /// so that a code with average usage (N/K per step) is missed by chance with probability ≈ e^−8.
    /// </summary>
    public long UsageWindow(long tokensPerStep) =>
        Math.Max(Config.RestartMinSteps, (long)Math.Ceiling(8.0 * CodebookSize / Math.Max(1, tokensPerStep)));

    /// <summary>Share of codes selected in the last <paramref name="window"/> training steps up to <paramref name="step"/> (a float scalar on the device; read it when reporting).</summary>
    public Tensor RecentUtilization(long step, long window) =>
        last_used.gt(Math.Max(0, step - window)).to(ScalarType.Float32).mean();

    /// <summary>Marks the selected codes as used at <paramref name="step"/>.</summary>
    protected void RecordUsage(Tensor indices, long step)
    {
        using var _ = no_grad();
        last_used.index_fill_(0, indices, step);
    }

    /// <summary>
    /// Sets the codes where <paramref name="mask"/> [K] is true to random rows of z [N, D] plus a little noise (so that
    /// codes drawn from the same row differ); returns the new code values [K, D] (equal to the old where not masked).
    /// Used for the EMA quantizer's data-dependent init at step 1 and its dead-code restarts.
    /// </summary>
    protected Tensor ReplaceCodes(Tensor mask, Tensor z, TrainingStep step)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var zd = z.detach();
        var pick = randint(0, zd.shape[0], [CodebookSize], dtype: ScalarType.Int64, device: zd.device);
        var noise = randn([CodebookSize, CodeDim], dtype: zd.dtype, device: zd.device);
        var fresh = zd.index_select(0, pick) + noise * (zd.std() * 1e-2);
        var codes = where(mask.unsqueeze(1), fresh, Codebook);
        Codebook.copy_(codes);
        return codes.MoveToOuterDisposeScope();
    }

    /// <summary>The codebook and commitment losses a·‖sg(z) − q‖² + β·‖z − sg(q)‖² (means over N × D), q the quantized vectors (their value: the selected codes).</summary>
    protected Tensor QuantizationLoss(Tensor z, Tensor selected, double codebookWeight)
    {
        using var scope = NewDisposeScope();
        var commitment = nn.functional.mse_loss(z, selected.detach()) * Config.CommitmentWeight;
        var loss = codebookWeight > 0 ? commitment + nn.functional.mse_loss(selected, z.detach()) * codebookWeight : commitment;
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Creates the quantizer the config names.</summary>
    public static VectorQuantizer Create(TokenizerConfig config) => config.Quantizer switch
    {
        QuantizerKind.Ibq => new IndexBackpropQuantizer(config),
        QuantizerKind.Ema => new EmaQuantizer(config),
        _ => throw new ArgumentException($"unknown quantizer '{config.Quantizer}'; use ibq or ema"),
    };
}
