using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// A lookup table ids → vectors, written with plain tensor ops (index_select) so that its weight is an
/// ordinary managed parameter that the flat-buffer optimizer can re-home (TorchSharp's nn.Embedding is a native module).
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    // Named as its state-dict key.
    readonly Parameter weight;

    /// <summary>A table of <paramref name="count"/> vectors of size <paramref name="dim"/>, N(0, std²) init.</summary>
    public TokenEmbedding(long count, long dim, double std, Device? device = null) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty(count, dim, device: device));
        using (no_grad()) nn.init.normal_(weight, 0, std);
        RegisterComponents();
    }

    /// <summary>The table [count, dim].</summary>
    public Parameter Weight => weight;

    /// <summary>ids [...] (int64) → vectors [..., dim].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var shape = ids.shape.Append(weight.shape[1]).ToArray();
        return weight.index_select(0, ids.reshape(-1)).view(shape).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) weight.Dispose();
        base.Dispose(disposing);
    }
}
