using System.Diagnostics;
using Snce.Data;
using Snce.Losses;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>What <c>snce tokenize</c> stores per image position besides the token.</summary>
public enum LatentStorage
{
    /// <summary>Tokens only (SNCE then uses the code-anchored table).</summary>
    None,
    /// <summary>The encoder's latents, float16 [M, T, D] (latents.npy): exact latent-anchored SNCE targets over all codes.</summary>
    Full,
    /// <summary>Each latent's k nearest codes and their distances, int32 + float32 [M, T, k]: truncated latent-anchored targets.</summary>
    TopK,
}

/// <summary>Options of <see cref="DatasetTokenizer.Tokenize"/>.</summary>
public sealed record TokenizeOptions
{
    /// <summary>k of the code-anchored neighbor table and of latent top-k neighbors; 0 = no neighbor table.</summary>
    public int NeighborsK { get; init; } = 32;
    /// <summary>What per-position latent information to store besides the tokens (needed by latent-anchored SNCE).</summary>
    public LatentStorage Latents { get; init; } = LatentStorage.None;
    /// <summary>Images encoded per forward pass (memory, not results, depends on it).</summary>
    public int BatchSize { get; init; } = 256;

}

/// <summary>The shards plus what tokenizing cost.</summary>
public sealed record TokenizeResult(TokenShards Shards, double Seconds, double TokensPerSecond, long FixedBytes);

/// <summary>
/// Tokenizes a whole data set (both splits) into <see cref="TokenShards"/>: tokens, labels, split, the effective
/// codebook, the code-anchored neighbor table (each code's k nearest codes by the tokenizer's metric, itself included
/// where it is its own nearest) and, if asked, per-position latents or their top-k code neighbors. Neighbors come
/// from <see cref="NeighborTargets"/> (blocked, so K = 262,144 fits), the same code the SNCE loss uses.
/// </summary>
public static class DatasetTokenizer
{
    /// <summary>
    /// Tokenizes every image of <paramref name="data"/>; <paramref name="dataReference"/> is what shards.json records as the
    /// data (default: the data set's name).
    /// </summary>
    public static TokenizeResult Tokenize(VqTokenizer model, ImageDataset data, string tokenizerDir, TokenizeOptions options, string? dataReference = null)
    {
        var c = model.Config;
        if (data.Size != c.ImageSize || data.Channels != c.Channels)
            throw new ArgumentException(
                $"the tokenizer takes {c.ImageSize}×{c.ImageSize} images with {c.Channels} channel(s); data set '{data.Name}' has {data.Size}×{data.Size} with {data.Channels}");
        if (options.BatchSize < 1) throw new ArgumentException($"batch size must be ≥ 1, got {options.BatchSize}");
        if (options.NeighborsK < 0 || options.NeighborsK > c.CodebookSize)
            throw new ArgumentException($"neighbors k must be in [0, {c.CodebookSize}], got {options.NeighborsK}");
        if (options.Latents == LatentStorage.TopK && options.NeighborsK == 0)
            throw new ArgumentException("--latents topk needs --neighbors-k ≥ 1");
        var device = model.Quantizer.Codebook.device;
        var (m, t, d, k) = (data.Count, c.TokensPerImage, c.CodeDim, options.NeighborsK);
        model.eval();
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var codes = model.Quantizer.Codes().contiguous();
        var tokens = empty(m, t, dtype: ScalarType.Int32);
        var latents = options.Latents == LatentStorage.Full ? empty(m, t, d, dtype: ScalarType.Float16) : null;
        var latentIds = options.Latents == LatentStorage.TopK ? empty(m, t, k, dtype: ScalarType.Int32) : null;
        var latentDist = options.Latents == LatentStorage.TopK ? empty(m, t, k, dtype: ScalarType.Float32) : null;
        for (long i = 0; i < m; i += options.BatchSize)
        {
            using var batch = NewDisposeScope();
            var len = Math.Min(options.BatchSize, m - i);
            var z = model.Latents(ImageDataset.ToModelRange(data.Images.narrow(0, i, len).to(device))); // [len, T, D]
            var flat = z.flatten(0, 1);
            tokens.narrow(0, i, len).copy_(model.Quantizer.Indices(flat).view(len, t).to(ScalarType.Int32).cpu());
            latents?.narrow(0, i, len).copy_(z.to(ScalarType.Float16).cpu());
            if (latentIds is not null)
            {
                using var nearest = NeighborTargets.Nearest(model.Quantizer.Prepare(flat), codes, model.Quantizer.Metric, k);
                latentIds.narrow(0, i, len).copy_(nearest.Ids.view(len, t, k));
                latentDist!.narrow(0, i, len).copy_(nearest.Distances.view(len, t, k));
            }
        }
        var tokenSeconds = clock.Elapsed.TotalSeconds;
        Tensor? codeIds = null, codeDist = null;
        if (k > 0)
        {
            using var table = NeighborTargets.CodeTable(codes, model.Quantizer.Metric, k);
            (codeIds, codeDist) = (table.Ids.to(ScalarType.Int32).cpu(), table.Distances.to(ScalarType.Float32).cpu());
        }
        var bytes = new Dictionary<string, long> { ["tokens"] = t * 4L, ["labels"] = 8, ["split"] = 1 };
        if (latents is not null) bytes["latents"] = (long)t * d * 2;
        if (latentIds is not null) bytes["latent_neighbors"] = (long)t * k * 8;
        var info = new TokenShardsInfo
        {
            Tokenizer = Path.GetFullPath(tokenizerDir),
            TokenizerSha256 = TokenizerCheckpoint.TryIdentity(tokenizerDir),
            Data = dataReference ?? data.Name,
            CodebookSize = c.CodebookSize,
            CodeDim = d,
            Metric = c.Metric,
            Grid = [c.GridSize, c.GridSize],
            ImageSize = c.ImageSize,
            Channels = c.Channels,
            Classes = data.Classes,
            Count = m,
            Latents = options.Latents.ToString().ToLowerInvariant(),
            NeighborsK = k,
            BytesPerImage = bytes,
        };
        var shards = new TokenShards
        {
            Info = info,
            Tokens = tokens.MoveToOuterDisposeScope(),
            Labels = data.Labels.to(ScalarType.Int64).cpu().clone().MoveToOuterDisposeScope(),
            Split = data.Split.to(ScalarType.Byte).cpu().clone().MoveToOuterDisposeScope(),
            Codebook = codes.to(ScalarType.Float32).cpu().clone().MoveToOuterDisposeScope(),
            CodeNeighborIds = codeIds?.MoveToOuterDisposeScope(),
            CodeNeighborDist = codeDist?.MoveToOuterDisposeScope(),
            Latents = latents?.MoveToOuterDisposeScope(),
            LatentNeighborIds = latentIds?.MoveToOuterDisposeScope(),
            LatentNeighborDist = latentDist?.MoveToOuterDisposeScope(),
        };
        // Fixed (per data set, not per image) costs: codebook K×D×4 and the code-anchored table K×k×8.
        var fixedBytes = (long)c.CodebookSize * d * 4 + (long)c.CodebookSize * k * 8;
        return new TokenizeResult(shards, clock.Elapsed.TotalSeconds, m * (double)t / Math.Max(1e-9, tokenSeconds), fixedBytes);
    }
}
