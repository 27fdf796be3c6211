using System.ComponentModel;
using System.Text.Json.Serialization;

namespace Snce.Models;

/// <summary>Which generator: next-token in raster order, or masked discrete diffusion (MaskGIT/MDLM).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<GeneratorKind>)), Description("generator")]
public enum GeneratorKind
{
    /// <summary>Causal transformer, next token in raster order (LlamaGen).</summary>
    [JsonStringEnumMemberName("ar")] Autoregressive,
    /// <summary>Bidirectional transformer over partially masked sequences (MaskGIT, MDLM).</summary>
    [JsonStringEnumMemberName("mask")] Masked,
}

/// <summary>Parses the command line's generator names.</summary>
public static class GeneratorKinds
{
    /// <summary>ar | mask (case-insensitive; "masked" also reads as mask) → kind; throws naming the allowed values.</summary>
    public static GeneratorKind Parse(string name) =>
        string.Equals(name.Trim(), "masked", StringComparison.OrdinalIgnoreCase)
            ? GeneratorKind.Masked
            : EnumNames<GeneratorKind>.Parse(name);
}

/// <summary>
/// Everything needed to rebuild a generator network: backbone shape, token vocabulary, token grid and
/// conditioning. Checkpoints store it, so the architecture is never stated twice.
/// </summary>
/// <param name="Kind">ar or mask.</param>
/// <param name="Preset">The preset name the shape came from (informational; <see cref="Transformer"/> is authoritative).</param>
/// <param name="Transformer">Backbone shape.</param>
/// <param name="CodebookSize">K: tokens the network predicts. The masked network reads K + 1 ids (id K = [MASK]).</param>
/// <param name="GridHeight">Token grid height; tokens are in raster order.</param>
/// <param name="GridWidth">Token grid width.</param>
/// <param name="NumClasses">Classes for class conditioning; the null class (CFG) is id <paramref name="NumClasses"/>. 0 = unconditional.</param>
/// <param name="Text">
/// Caption conditioning instead of classes (<see cref="TextConditioning"/>); null (and absent from older manifests) = class conditioning.
/// With <paramref name="Source"/>: the instruction of an instruction edit, prefix [text | source] (<see cref="InstructionConditioning"/>).
/// </param>
/// <param name="Source">
/// Conditioning on a source image's tokens (image-to-image: paired translation; <see cref="SourceTokenConditioning"/>), with the
/// class slot before them; null (and absent from older manifests) = none.
/// </param>
public sealed record GeneratorConfig(
    [property: JsonPropertyName("kind")] GeneratorKind Kind,
    [property: JsonPropertyName("preset")] string Preset,
    [property: JsonPropertyName("transformer")] TransformerConfig Transformer,
    [property: JsonPropertyName("codebook_size")] int CodebookSize,
    [property: JsonPropertyName("grid_height")] int GridHeight,
    [property: JsonPropertyName("grid_width")] int GridWidth,
    [property: JsonPropertyName("num_classes")] int NumClasses,
    [property: JsonPropertyName("text"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] TextConditioningConfig? Text = null,
    [property: JsonPropertyName("source"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SourceConditioningConfig? Source = null)
{
    /// <summary>
    /// What the generator is conditioned on: "class", "text", "source" or "instruction" (an instruction edit: text and source; written to the manifest
    /// for readers; <see cref="Text"/> and <see cref="Source"/> decide, so a manifest without them is class-conditional).
    /// </summary>
    [JsonPropertyName("conditioning")] public string Conditioning => (Source, Text) switch
    {
        (not null, not null) => "instruction",
        (not null, null) => "source",
        (null, not null) => "text",
        _ => "class",
    };

    /// <summary>How the input token embeddings start (absent from manifests written before it, and when random: random).</summary>
    [JsonPropertyName("embedding_init"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public EmbeddingInit EmbeddingInit { get; init; }

    /// <summary>Tokens per image T = H·W.</summary>
    [JsonIgnore] public int SequenceLength => GridHeight * GridWidth;

    /// <summary>Ids the input embedding reads: K (AR) or K + 1 (masked: id K is [MASK]).</summary>
    [JsonIgnore] public int InputVocabulary => Kind == GeneratorKind.Masked ? CodebookSize + 1 : CodebookSize;

    /// <summary>The [MASK] id of the masked generator (= K).</summary>
    [JsonIgnore] public int MaskToken => Kind == GeneratorKind.Masked
        ? CodebookSize
        : throw new InvalidOperationException("the autoregressive generator has no mask token");

    /// <summary>Exact trainable parameter count (the test checks it against the built network).</summary>
    [JsonIgnore] public long ParameterCount =>
        Transformer.BlockParameters
        + (long)InputVocabulary * Transformer.Dim      // token embedding
        + (Text?.ParameterCount(Transformer.Dim) ?? 0)  // caption MLPs and the null slot
        + (Text is null || Source is not null
            ? (NumClasses + 1L) * Transformer.Dim      // class embedding incl. the null class (the source prefix keeps its class slot)
            : 0)
        + (Source?.ParameterCount(CodebookSize, Transformer.Dim) ?? 0)
        + (long)CodebookSize * Transformer.Dim;        // output head

    /// <summary>Throws naming the bad value when the network cannot be built.</summary>
    public void Validate()
    {
        Transformer.Validate();
        if (CodebookSize < 2) throw new ArgumentException($"codebook size must be at least 2 (got {CodebookSize})");
        if (GridHeight <= 0 || GridWidth <= 0) throw new ArgumentException($"token grid must be positive (got {GridHeight}x{GridWidth})");
        if (NumClasses < 0) throw new ArgumentException($"number of classes must be ≥ 0 (got {NumClasses})");
        if (Text is not null && NumClasses != 0) throw new ArgumentException($"a text-conditioned generator takes no classes (got {NumClasses})");
        Text?.Validate();
        Source?.Validate();
        if (Kind == GeneratorKind.Autoregressive && SequenceLength < 2) throw new ArgumentException("the autoregressive generator needs at least 2 tokens per image");
    }
}

/// <summary>The source-token conditioning of an image-to-image generator (<see cref="SourceTokenConditioning"/>).</summary>
/// <param name="Tokens">Source token slots: the source image's tokens in raster order (the same tokenizer as the target, so T).</param>
public sealed record SourceConditioningConfig([property: JsonPropertyName("tokens")] int Tokens)
{
    /// <summary>Trainable parameters besides the class embedding at model width <paramref name="dim"/>: K + 1 source codes, T positions, 1 segment.</summary>
    public long ParameterCount(int codebookSize, int dim) => (codebookSize + 1L + Tokens + 1) * dim;

    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (Tokens < 1) throw new ArgumentException($"source-token conditioning needs at least 1 source token (got {Tokens})");
    }
}
