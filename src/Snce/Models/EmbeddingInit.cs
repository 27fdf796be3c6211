using System.ComponentModel;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>How a generator's input token embeddings start.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<EmbeddingInit>)), Description("embedding init")]
public enum EmbeddingInit
{
    /// <summary>N(0, σ²) per entry, σ the backbone's init std (LlamaGen's default).</summary>
    [JsonStringEnumMemberName("random")] Random,
    /// <summary>
    /// A fixed random projection of the tokenizer's codebook (<see cref="CodebookEmbeddings"/>): codes close in the latent space
    /// start with close embeddings, the input-side twin of SNCE's geometry (asked for by LlamaGen users, their issue #66).
    /// </summary>
    [JsonStringEnumMemberName("codebook")] Codebook,
}

/// <summary>Token embeddings from the codebook: E = (C − mean C) P, P ~ N(0, 1/D) [D, d], rescaled to the init std.</summary>
public static class CodebookEmbeddings
{
    /// <summary>
    /// [K, <paramref name="dim"/>] embeddings of the K codes of <paramref name="codebook"/> [K, D]: centred, projected by a Gaussian
    /// matrix drawn from <paramref name="seed"/> (so distances are kept up to the Johnson–Lindenstrauss distortion), then scaled so
    /// the entries' standard deviation is <paramref name="std"/> — the scale of a random init, so only the geometry changes.
    /// Float32 on the CPU; the caller owns the result.
    /// </summary>
    public static Tensor Project(Tensor codebook, long dim, double std, long seed)
    {
        if (codebook.dim() != 2 || codebook.shape[0] < 2) throw new ArgumentException($"the codebook must be [K ≥ 2, D], got [{string.Join(", ", codebook.shape)}]");
        if (dim <= 0 || !(std > 0)) throw new ArgumentOutOfRangeException(nameof(dim), $"need dim > 0 and std > 0 (got {dim}, {std})");
        using var scope = NewDisposeScope();
        var c = codebook.to(ScalarType.Float64, CPU);
        if (!c.isfinite().all().item<bool>()) throw new ArgumentException("the codebook holds NaN or infinite values; re-train or re-tokenize");
        c = c - c.mean([0], keepdim: true);
        using var g = new Generator((ulong)seed ^ 0xE4B3_D1C0_0000_0000UL);
        var p = randn([c.shape[1], dim], dtype: ScalarType.Float64, generator: g) / Math.Sqrt(c.shape[1]);
        var e = c.mm(p);
        var sd = e.std().item<double>();
        if (!(sd > 0)) throw new ArgumentException("the codebook's codes are all equal: there is no geometry to project");
        return (e * (std / sd)).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}
