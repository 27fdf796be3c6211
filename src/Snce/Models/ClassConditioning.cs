using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Class conditioning as one prefix token: ids 0..C−1 are classes, id C is the null class of
/// classifier-free guidance (also used for unlabeled images, label −1).
/// </summary>
public sealed class ClassConditioning : nn.Module, IConditioning
{
    readonly int numClasses;
    // Named as its state-dict key.
    readonly TokenEmbedding class_embedding;

    /// <summary>C classes plus the null class, embeddings of size <paramref name="dim"/>.</summary>
    public ClassConditioning(int numClasses, int dim, double std, Device? device = null) : base(nameof(ClassConditioning))
    {
        this.numClasses = numClasses;
        class_embedding = new TokenEmbedding(numClasses + 1, dim, std, device);
        RegisterComponents();
    }

    /// <summary>C, the number of real classes; the null id.</summary>
    public int NullClass => numClasses;

    /// <inheritdoc/>
    public int PrefixLength => 1;

    /// <inheritdoc/>
    public Tensor Embed(Tensor labels)
    {
        using var scope = NewDisposeScope();
        var ids = labels.masked_fill(labels < 0, NullClass);
        return class_embedding.forward(ids).unsqueeze(1).MoveToOuterDisposeScope();   // [B, 1, d]
    }

    /// <inheritdoc/>
    public Tensor NullLike(Tensor labels) => full_like(labels, NullClass);

    /// <inheritdoc/>
    public Tensor Drop(Tensor labels, Tensor drop) => labels.masked_fill(drop, NullClass);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) class_embedding.Dispose();
        base.Dispose(disposing);
    }
}
