using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Conditioning on a source image's tokens (image-to-image: translation, instruction edits) plus a class: the prefix is
/// [class token | source token 0 | … | source token T−1] (P = 1 + T). Each source slot is the source code's embedding plus a
/// learned embedding of its position and a segment embedding that marks it as source, not target: the backbone's 2-D rotary
/// gives prefix slots angle 0, so the source's positions come from this table. The AR generator reads the prefix causally
/// before the target tokens (EditAR-style); the masked generator reads it bidirectionally as unmasked context.
/// </summary>
/// <remarks>
/// A condition is int64 [B, 1 + T]: column 0 the class id (−1 or C = the null class), columns 1..T the source ids (K = the null
/// source). The null condition (classifier-free guidance, <see cref="Drop"/>) is the null class with the null source.
/// <see cref="GeneratorConfig.Source"/> selects it, so a checkpoint of <c>snce train</c> on paired shards rebuilds it.
/// </remarks>
public sealed class SourceTokenConditioning : nn.Module, IConditioning
{
    readonly int numClasses, codebookSize, length;
    // Named as their state-dict keys.
    readonly TokenEmbedding class_embedding, source_embedding, source_position, source_segment;

    /// <summary>C classes (+ null), K source codes (+ null) on T source slots, embeddings of size <paramref name="dim"/>.</summary>
    public SourceTokenConditioning(int numClasses, int codebookSize, int sourceLength, int dim, double std, Device? device = null)
        : base(nameof(SourceTokenConditioning))
    {
        if (numClasses < 0 || codebookSize < 2 || sourceLength < 1)
            throw new ArgumentException($"source-token conditioning needs C ≥ 0 classes, K ≥ 2 codes and T ≥ 1 slots (got {numClasses}, {codebookSize}, {sourceLength})");
        (this.numClasses, this.codebookSize, length) = (numClasses, codebookSize, sourceLength);
        class_embedding = new TokenEmbedding(numClasses + 1, dim, std, device);
        source_embedding = new TokenEmbedding(codebookSize + 1, dim, std, device);
        source_position = new TokenEmbedding(sourceLength, dim, std, device);
        source_segment = new TokenEmbedding(1, dim, std, device);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public int PrefixLength => 1 + length;

    /// <summary>A condition from class ids [B] (−1 = null) and source ids [B, T] → int64 [B, 1 + T].</summary>
    public Tensor Condition(Tensor classes, Tensor sourceTokens)
    {
        if (sourceTokens.dim() != 2 || sourceTokens.shape[1] != length)
            throw new ArgumentException($"need classes [B] and source tokens [B, {length}], got [{string.Join(", ", classes.shape)}] and [{string.Join(", ", sourceTokens.shape)}]");
        return Pack(classes, sourceTokens);
    }

    /// <summary>Class ids [B] (−1 = null) and source ids [B, T] → the condition int64 [B, 1 + T] (no length check: <see cref="Condition"/> checks it).</summary>
    public static Tensor Pack(Tensor classes, Tensor sourceTokens)
    {
        if (sourceTokens.dim() != 2 || classes.dim() != 1 || classes.shape[0] != sourceTokens.shape[0])
            throw new ArgumentException($"need classes [B] and source tokens [B, T], got [{string.Join(", ", classes.shape)}] and [{string.Join(", ", sourceTokens.shape)}]");
        using var scope = NewDisposeScope();
        return cat([classes.to_type(ScalarType.Int64).unsqueeze(1), sourceTokens.to_type(ScalarType.Int64)], 1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Embed(Tensor condition)
    {
        if (condition.dim() != 2 || condition.shape[1] != PrefixLength)
            throw new ArgumentException($"a source-token condition is int64 [B, {PrefixLength}] (class, then {length} source ids), got [{string.Join(", ", condition.shape)}]");
        using var scope = NewDisposeScope();
        var cls = condition.select(1, 0);
        var cls0 = class_embedding.forward(cls.masked_fill(cls < 0, numClasses)).unsqueeze(1);                     // [B, 1, d]
        var src = source_embedding.forward(condition.narrow(1, 1, length));                                        // [B, T, d]
        var pos = source_position.forward(arange(length, dtype: ScalarType.Int64, device: condition.device));     // [T, d]
        var seg = source_segment.forward(zeros(1, dtype: ScalarType.Int64, device: condition.device));            // [1, d]
        return cat([cls0, src + pos + seg], 1).MoveToOuterDisposeScope();                                          // [B, 1 + T, d]
    }

    /// <inheritdoc/>
    public Tensor NullLike(Tensor condition)
    {
        using var scope = NewDisposeScope();
        var n = full_like(condition, codebookSize);
        n.select(1, 0).fill_(numClasses);
        return n.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Drop(Tensor condition, Tensor drop)
    {
        using var scope = NewDisposeScope();
        return where(drop.unsqueeze(1), NullLike(condition), condition).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { class_embedding.Dispose(); source_embedding.Dispose(); source_position.Dispose(); source_segment.Dispose(); }
        base.Dispose(disposing);
    }
}
