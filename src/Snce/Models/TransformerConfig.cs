using System.Text.Json.Serialization;

namespace Snce.Models;

/// <summary>
/// The shape of the transformer backbone (LlamaGen-style: pre-norm RMSNorm, SwiGLU, 2-D rotary positions, no biases).
/// </summary>
/// <param name="Dim">Model width d.</param>
/// <param name="Layers">Number of transformer blocks.</param>
/// <param name="Heads">Attention heads; d / heads must be a multiple of 4 (2-D rotary: half the head dims per axis, in pairs).</param>
/// <param name="FfnMultipleOf">SwiGLU hidden width is 8d/3 rounded up to a multiple of this (LlamaGen: 256).</param>
/// <param name="NormEps">RMSNorm ε.</param>
/// <param name="RopeBase">Rotary base frequency.</param>
/// <param name="InitStd">Std of the normal init of linear and embedding weights (the output head starts at zero).</param>
/// <param name="Dropout">Dropout probability in training, on the attention weights and on each residual branch (after the
/// attention's output projection and after the SwiGLU), as in LlamaGen's attn/resid/ffn dropout; 0 = none. Manifests
/// written before it existed load as 0.</param>
public sealed record TransformerConfig(
    [property: JsonPropertyName("dim")] int Dim,
    [property: JsonPropertyName("layers")] int Layers,
    [property: JsonPropertyName("heads")] int Heads,
    [property: JsonPropertyName("ffn_multiple_of")] int FfnMultipleOf = 256,
    [property: JsonPropertyName("norm_eps")] double NormEps = 1e-5,
    [property: JsonPropertyName("rope_base")] double RopeBase = 10000,
    [property: JsonPropertyName("init_std")] double InitStd = 0.02,
    [property: JsonPropertyName("dropout")] double Dropout = 0)
{
    /// <summary>Per-head width d / heads.</summary>
    [JsonIgnore] public int HeadDim => Dim / Heads;

    /// <summary>SwiGLU hidden width: ⌈(2·4d/3) / m⌉·m (LlamaGen's rule).</summary>
    [JsonIgnore] public int FfnHidden => (2 * 4 * Dim / 3 + FfnMultipleOf - 1) / FfnMultipleOf * FfnMultipleOf;

    /// <summary>Parameters of the blocks and the final norm (no embeddings, no output head).</summary>
    [JsonIgnore] public long BlockParameters =>
        Layers * (4L * Dim * Dim + 3L * Dim * FfnHidden + 2L * Dim) + Dim;

    /// <summary>Throws naming the bad value when the shape cannot be built.</summary>
    public void Validate()
    {
        if (Dim <= 0 || Layers <= 0 || Heads <= 0) throw new ArgumentException($"transformer dim, layers and heads must be positive (got dim {Dim}, layers {Layers}, heads {Heads})");
        if (Dim % Heads != 0) throw new ArgumentException($"dim {Dim} is not divisible by heads {Heads}");
        if (HeadDim % 4 != 0) throw new ArgumentException($"head dim {HeadDim} (dim {Dim} / heads {Heads}) must be a multiple of 4 for 2-D rotary positions");
        if (FfnMultipleOf <= 0) throw new ArgumentException($"ffn_multiple_of must be positive (got {FfnMultipleOf})");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"dropout must be in [0, 1) (got {Dropout}); 0 turns it off");
    }
}
