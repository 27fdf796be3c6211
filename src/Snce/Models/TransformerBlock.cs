using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Pre-norm block: h = x + Drop(Attn(RMSNorm(x))); out = h + Drop(SwiGLU(RMSNorm(h))). Drop is dropout in training
/// mode (the config's probability; identity at 0 or in eval mode), drawn from the device's default generator.
/// </summary>
public sealed class TransformerBlock : nn.Module
{
    // Named as their state-dict keys (LlamaGen's names).
    readonly RmsNorm attention_norm, ffn_norm;
    readonly Attention attention;
    readonly SwiGlu feed_forward;
    readonly double dropout;

    /// <summary>One block of shape <paramref name="c"/>.</summary>
    public TransformerBlock(TransformerConfig c, Device? device = null) : base(nameof(TransformerBlock))
    {
        attention_norm = new RmsNorm(c.Dim, c.NormEps, device);
        attention = new Attention(c, device);
        ffn_norm = new RmsNorm(c.Dim, c.NormEps, device);
        feed_forward = new SwiGlu(c, device);
        dropout = c.Dropout;
        RegisterComponents();
    }

    /// <summary>x [B, S, d] at slots [start, start+S) → [B, S, d]; see <see cref="Attention.Forward"/>.</summary>
    public Tensor Forward(Tensor x, Rotary2d rotary, bool causal, long start = 0, KvCache? cache = null, int layer = 0, Tensor? keyMask = null)
    {
        using var scope = NewDisposeScope();
        var h = x + Drop(attention.Forward(attention_norm.forward(x), rotary, causal, start, cache, layer, keyMask));
        return (h + Drop(feed_forward.forward(ffn_norm.forward(h)))).MoveToOuterDisposeScope();
    }

    Tensor Drop(Tensor branch) => training && dropout > 0 ? nn.functional.dropout(branch, dropout, training: true) : branch;

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { attention_norm.Dispose(); attention.Dispose(); ffn_norm.Dispose(); feed_forward.Dispose(); }
        base.Dispose(disposing);
    }
}
