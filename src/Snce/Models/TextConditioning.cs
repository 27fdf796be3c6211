using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>The text conditioning of a generator: what its caption encoder gives and how many word pieces it reads.</summary>
/// <param name="Encoder">The text encoder's id (model name + weights hash), e.g. all-minilm-l6-v2-…; prompts must be encoded by it.</param>
/// <param name="EncoderDim">E: the encoder's feature size (384 for MiniLM).</param>
/// <param name="MaxTokens">L: word pieces read per caption ([CLS] and [SEP] included); the prefix has L + 1 slots.</param>
public sealed record TextConditioningConfig(
    [property: JsonPropertyName("encoder")] string Encoder,
    [property: JsonPropertyName("encoder_dim")] int EncoderDim,
    [property: JsonPropertyName("max_tokens")] int MaxTokens)
{
    /// <summary>Prefix slots: L token slots and one pooled slot.</summary>
    [JsonIgnore] public int PrefixLength => MaxTokens + 1;

    /// <summary>Trainable parameters at model width <paramref name="dim"/>: two MLPs E → d → d (with biases) and the null slot.</summary>
    public long ParameterCount(int dim) => 2L * ((long)EncoderDim * dim + dim + (long)dim * dim + dim) + dim;

    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Encoder)) throw new ArgumentException("the text conditioning names no encoder");
        if (EncoderDim < 1) throw new ArgumentException($"text encoder dimension must be ≥ 1 (got {EncoderDim})");
        if (MaxTokens < 1) throw new ArgumentException($"text max tokens must be ≥ 1 (got {MaxTokens})");
    }
}

/// <summary>
/// Caption conditioning as a prefix of L + 1 slots (LlamaGen-t2i's caption prefix): the encoder's per-token hidden
/// states through a small MLP (E → d, GELU, d → d) into L slots, padded slots masked out of attention, then one slot
/// for the pooled sentence vector through its own MLP. The null condition of classifier-free guidance is a learned
/// embedding in the pooled slot with every token slot masked. The backbone learns nothing about text: this prefix is the seam.
/// </summary>
/// <remarks>
/// A condition is one float tensor [B, L + 1, E + 1] (<see cref="Pack"/>): rows 0..L−1 are the token states, row L the
/// pooled vector; the last channel flags what is real (token rows: 1 inside the caption, 0 for padding; pooled row:
/// 1 for a caption, 0 for the null condition). All zeros is the null condition, so dropping a caption is a masked_fill.
/// The pooled slot is last so the AR generator reads its first token's distribution there: it is never padding.
/// </remarks>
public sealed class TextConditioning : nn.Module, IConditioning
{
    readonly TextConditioningConfig config;
    // Named as their state-dict keys.
    readonly Linear token_fc1, token_fc2, pooled_fc1, pooled_fc2;
    readonly TokenEmbedding null_embedding;

    /// <summary>Builds the two MLPs (N(0, std²) weights, zero biases) and the null slot for model width <paramref name="dim"/>.</summary>
    public TextConditioning(TextConditioningConfig config, int dim, double std, Device? device = null) : base(nameof(TextConditioning))
    {
        config.Validate();
        this.config = config;
        token_fc1 = nn.Linear(config.EncoderDim, dim, device: device);
        token_fc2 = nn.Linear(dim, dim, device: device);
        pooled_fc1 = nn.Linear(config.EncoderDim, dim, device: device);
        pooled_fc2 = nn.Linear(dim, dim, device: device);
        using (no_grad())
            foreach (var l in new[] { token_fc1, token_fc2, pooled_fc1, pooled_fc2 })
            {
                nn.init.normal_(l.weight, 0, std);
                nn.init.zeros_(l.bias!);
            }
        null_embedding = new TokenEmbedding(1, dim, std, device);
        RegisterComponents();
    }

    /// <summary>The configuration.</summary>
    public TextConditioningConfig Config => config;

    /// <inheritdoc/>
    public int PrefixLength => config.PrefixLength;

    /// <summary>
    /// Packs encoder outputs into conditions [B, L + 1, E + 1] (fp32): <paramref name="tokens"/> [B, L', E] with
    /// L' ≤ L (padded here), <paramref name="lengths"/> [B] (int64, valid rows of each), <paramref name="pooled"/> [B, E].
    /// </summary>
    public static Tensor Pack(Tensor tokens, Tensor lengths, Tensor pooled, int maxTokens)
    {
        using var scope = NewDisposeScope();
        var (b, l, e) = (tokens.shape[0], tokens.shape[1], tokens.shape[2]);
        if (l > maxTokens) throw new ArgumentException($"{l} token rows do not fit a prefix of {maxTokens} tokens");
        var valid = (arange(maxTokens, device: tokens.device).unsqueeze(0) < lengths.unsqueeze(1)).to_type(ScalarType.Float32);   // [B, L]
        var t = zeros(b, maxTokens, e, device: tokens.device);
        t.narrow(1, 0, l).copy_(tokens.to_type(ScalarType.Float32));
        var tokenRows = cat([t * valid.unsqueeze(2), valid.unsqueeze(2)], 2);                                        // [B, L, E+1]
        var pooledRow = cat([pooled.to_type(ScalarType.Float32), ones(b, 1, device: tokens.device)], 1).unsqueeze(1);  // [B, 1, E+1]
        return cat([tokenRows, pooledRow], 1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Embed(Tensor condition)
    {
        using var scope = NewDisposeScope();
        Check(condition);
        // The packed features are fp32; the MLPs run in the weights' dtype (bf16 when the generator trains in bf16 weights).
        condition = condition.to_type(token_fc1.weight!.dtype);
        var (l, e) = (config.MaxTokens, config.EncoderDim);
        var valid = condition.narrow(1, 0, l).select(2, e).unsqueeze(2);                                     // [B, L, 1]
        var real = condition.select(1, l).select(1, e).unsqueeze(1);                                         // [B, 1]
        var tokens = token_fc2.forward(nn.functional.gelu(token_fc1.forward(condition.narrow(1, 0, l).narrow(2, 0, e)))) * valid;
        var pooledIn = condition.select(1, l).narrow(1, 0, e);
        var pooled = pooled_fc2.forward(nn.functional.gelu(pooled_fc1.forward(pooledIn)));                  // [B, d]
        var nullSlot = null_embedding.Weight.expand(pooled.shape[0], -1);
        var slot = pooled * real + nullSlot * (1 - real);
        return cat([tokens, slot.unsqueeze(1)], 1).MoveToOuterDisposeScope();                                // [B, L+1, d]
    }

    /// <inheritdoc/>
    public Tensor? PrefixMask(Tensor condition)
    {
        using var scope = NewDisposeScope();
        Check(condition);
        var valid = condition.narrow(1, 0, config.MaxTokens).select(2, config.EncoderDim) > 0.5;            // [B, L]
        return cat([valid, ones(condition.shape[0], 1, dtype: ScalarType.Bool, device: condition.device)], 1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor NullLike(Tensor condition) => zeros_like(condition);

    /// <inheritdoc/>
    public Tensor Drop(Tensor condition, Tensor drop) => condition.masked_fill(drop.view(-1, 1, 1), 0);

    void Check(Tensor condition)
    {
        if (condition.dim() != 3 || condition.shape[1] != config.PrefixLength || condition.shape[2] != config.EncoderDim + 1)
            throw new ArgumentException(
                $"text conditions must be [B, {config.PrefixLength}, {config.EncoderDim + 1}] (TextConditioning.Pack); got [{string.Join(", ", condition.shape)}]");
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { token_fc1.Dispose(); token_fc2.Dispose(); pooled_fc1.Dispose(); pooled_fc2.Dispose(); null_embedding.Dispose(); }
        base.Dispose(disposing);
    }
}
