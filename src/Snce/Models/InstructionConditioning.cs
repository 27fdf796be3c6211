using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Conditioning of an instruction edit: the instruction's text prefix (<see cref="TextConditioning"/>, L + 1 slots) followed by the
/// source image's prefix (<see cref="SourceTokenConditioning"/>, 1 + T slots), so the prefix is [text | null class | source tokens].
/// Both halves are the existing modules, unchanged: this class only packs their two conditions into one tensor and concatenates
/// their embeddings and attention masks.
/// </summary>
/// <remarks>
/// A condition is float32 [B, (L + 1)(E + 1) + 1 + T] (<see cref="Pack"/>): the text condition [B, L + 1, E + 1] flattened, then the
/// source condition (class id, source ids) as floats (exact: ids &lt; 2²⁴). Classifier-free guidance runs over the text only: the null
/// condition (<see cref="NullLike"/>, <see cref="Drop"/>) is the null instruction with the source kept, so <c>--cfg-dropout</c> drops
/// the instruction in training and <c>--cfg G</c> pushes the edit towards what the instruction implies for this source (InstructPix2Pix's
/// text guidance with the image scale at 1). The source is never dropped. The AR generator reads its first target token at the last
/// source slot, which is never padding.
/// </remarks>
public sealed class InstructionConditioning : nn.Module, IConditioning
{
    readonly int textWidth, sourceWidth;
    // Named as their state-dict keys.
    readonly TextConditioning text;
    readonly SourceTokenConditioning source;

    /// <summary>The text half for <paramref name="textConfig"/> and the source half for T = <paramref name="sourceLength"/> ids of K codes, no classes.</summary>
    public InstructionConditioning(TextConditioningConfig textConfig, int codebookSize, int sourceLength, int dim, double std, Device? device = null)
        : base(nameof(InstructionConditioning))
    {
        text = new TextConditioning(textConfig, dim, std, device);
        source = new SourceTokenConditioning(0, codebookSize, sourceLength, dim, std, device);
        (textWidth, sourceWidth) = (textConfig.PrefixLength * (textConfig.EncoderDim + 1), source.PrefixLength);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public int PrefixLength => text.PrefixLength + source.PrefixLength;

    /// <summary>Text conditions [B, L + 1, E + 1] (<see cref="TextConditioning.Pack"/>) and source conditions int64 [B, 1 + T] (<see cref="SourceTokenConditioning.Pack"/>) → float32 [B, (L + 1)(E + 1) + 1 + T].</summary>
    public static Tensor Pack(Tensor textConditions, Tensor sourceConditions)
    {
        if (textConditions.dim() != 3 || sourceConditions.dim() != 2 || textConditions.shape[0] != sourceConditions.shape[0])
            throw new ArgumentException($"need text conditions [B, L + 1, E + 1] and source conditions [B, 1 + T], got [{string.Join(", ", textConditions.shape)}] and [{string.Join(", ", sourceConditions.shape)}]");
        using var scope = NewDisposeScope();
        return cat([textConditions.to_type(ScalarType.Float32).flatten(1), sourceConditions.to(textConditions.device).to_type(ScalarType.Float32)], 1).MoveToOuterDisposeScope();
    }

    /// <summary>The text half of conditions [B, L + 1, E + 1].</summary>
    public Tensor TextPart(Tensor condition)
    {
        Check(condition);
        var c = text.Config;
        return condition.narrow(1, 0, textWidth).view(condition.shape[0], c.PrefixLength, c.EncoderDim + 1);
    }

    /// <summary>The source half of conditions, int64 [B, 1 + T].</summary>
    public Tensor SourcePart(Tensor condition)
    {
        Check(condition);
        return condition.narrow(1, textWidth, sourceWidth).round().to_type(ScalarType.Int64);
    }

    /// <inheritdoc/>
    public Tensor Embed(Tensor condition)
    {
        using var scope = NewDisposeScope();
        return cat([text.Embed(TextPart(condition)), source.Embed(SourcePart(condition))], 1).MoveToOuterDisposeScope();   // [B, L+1 + 1+T, d]
    }

    /// <inheritdoc/>
    public Tensor? PrefixMask(Tensor condition)
    {
        using var scope = NewDisposeScope();
        var t = text.PrefixMask(TextPart(condition))!;                                                                    // [B, L+1]
        return cat([t, ones(condition.shape[0], sourceWidth, dtype: ScalarType.Bool, device: condition.device)], 1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor NullLike(Tensor condition)
    {
        using var scope = NewDisposeScope();
        Check(condition);
        var n = condition.clone();
        n.narrow(1, 0, textWidth).zero_();                                                                                // the null instruction; the source stays
        return n.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Drop(Tensor condition, Tensor drop)
    {
        using var scope = NewDisposeScope();
        return where(drop.unsqueeze(1), NullLike(condition), condition).MoveToOuterDisposeScope();
    }

    void Check(Tensor condition)
    {
        if (condition.dim() != 2 || condition.shape[1] != textWidth + sourceWidth)
            throw new ArgumentException($"instruction conditions are float32 [B, {textWidth + sourceWidth}] (InstructionConditioning.Pack); got [{string.Join(", ", condition.shape)}]");
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { text.Dispose(); source.Dispose(); }
        base.Dispose(disposing);
    }
}
