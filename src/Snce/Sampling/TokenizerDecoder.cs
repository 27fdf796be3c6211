using Snce.Data;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>The VQ tokenizer's decoder as an <see cref="ITokenDecoder"/>: token grids → uint8 images.</summary>
public sealed class TokenizerDecoder : ITokenDecoder
{
    readonly VqTokenizer tokenizer;
    readonly int chunk;

    /// <summary>Loads the tokenizer checkpoint in <paramref name="dir"/> onto <paramref name="device"/>; decodes <paramref name="chunk"/> images at a time.</summary>
    public TokenizerDecoder(string dir, Device device, int chunk = 64)
    {
        tokenizer = TokenizerCheckpoint.Load(dir, device);
        this.chunk = chunk;
    }

    /// <inheritdoc/>
    public long CodebookSize => tokenizer.Config.CodebookSize;

    /// <summary>Token grid side (tokens per row).</summary>
    public int GridSize => tokenizer.Config.GridSize;

    /// <inheritdoc/>
    public Tensor Decode(Tensor ids)
    {
        if (ids.dim() != 3 || ids.shape[1] != GridSize || ids.shape[2] != GridSize)
            throw new ArgumentException($"this tokenizer decodes {GridSize}x{GridSize} token grids, got [{string.Join(", ", ids.shape)}]");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = ids.reshape(ids.shape[0], -1).to_type(ScalarType.Int64);
        var parts = new List<Tensor>();
        for (long s = 0; s < flat.shape[0]; s += chunk)
        {
            var decoded = tokenizer.Decode(flat.narrow(0, s, Math.Min(chunk, flat.shape[0] - s)));
            if (!decoded.isfinite().all().item<bool>())          // never write images made from NaN/Inf
                throw new InvalidDataException("decoding produced NaN or infinite pixel values; the tokenizer's weights are damaged (re-train it) or the token ids are not its own");
            parts.Add(ImageDataset.FromModelRange(decoded));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose() => tokenizer.Dispose();
}
