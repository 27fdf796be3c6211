using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>Describes a token shard folder (shards.json). Sizes are per image unless named otherwise.</summary>
public sealed record TokenShardsInfo
{
    public const string CurrentFormat = "snce-tokens/1";
    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    /// <summary>The tokenizer checkpoint folder the tokens came from (absolute path).</summary>
    [JsonPropertyName("tokenizer")] public required string Tokenizer { get; init; }
    /// <summary>Data set name or folder the images came from.</summary>
    [JsonPropertyName("data")] public required string Data { get; init; }
    [JsonPropertyName("codebook_size")] public required int CodebookSize { get; init; }
    [JsonPropertyName("code_dim")] public required int CodeDim { get; init; }
    /// <summary>The tokenizer's metric name (l2, dot, cosine): quantization and SNCE targets use it.</summary>
    [JsonPropertyName("metric")] public required string Metric { get; init; }
    /// <summary>Token grid height and width; tokens are stored in raster order.</summary>
    [JsonPropertyName("grid")] public required int[] Grid { get; init; }
    [JsonPropertyName("image_size")] public required int ImageSize { get; init; }
    [JsonPropertyName("channels")] public required int Channels { get; init; }
    /// <summary>Class names, index = label; empty when unlabeled.</summary>
    [JsonPropertyName("classes")] public string[] Classes { get; init; } = [];
    [JsonPropertyName("count")] public required int Count { get; init; }
    /// <summary>What per-position latent information is stored: none, full (latents.npy) or topk (latent_neighbors_*.npy).</summary>
    [JsonPropertyName("latents")] public string Latents { get; init; } = "none";
    /// <summary>k of the code-anchored neighbor table and of top-k latent neighbors.</summary>
    [JsonPropertyName("neighbors_k")] public int NeighborsK { get; init; }
    /// <summary>Bytes each stored part costs per image (for docs and the tokenize summary).</summary>
    [JsonPropertyName("bytes_per_image")] public Dictionary<string, long> BytesPerImage { get; init; } = [];

    [JsonIgnore] public int SequenceLength => Grid[0] * Grid[1];
}

/// <summary>
/// A folder of tokenized images: everything a generator and the SNCE loss need, without the tokenizer.
/// Files: shards.json, tokens.npy int32 [M, T], labels.npy int64 [M] (−1 = none), split.npy uint8 [M]
/// (0 train, 1 validation), codebook.npy float32 [K, D]; optional code_neighbors_ids.npy int32 [K, k] +
/// code_neighbors_dist.npy float32 [K, k] (code-anchored table), latents.npy float16 [M, T, D] or
/// latent_neighbors_ids.npy int32 [M, T, k] + latent_neighbors_dist.npy float32 [M, T, k].
/// </summary>
public sealed class TokenShards : IDisposable
{
    public const string InfoFile = "shards.json";
    public const byte TrainSplit = 0, ValidationSplit = 1;

    public required TokenShardsInfo Info { get; init; }
    public required Tensor Tokens { get; init; }
    public required Tensor Labels { get; init; }
    public required Tensor Split { get; init; }
    public required Tensor Codebook { get; init; }
    public Tensor? CodeNeighborIds { get; init; }
    public Tensor? CodeNeighborDist { get; init; }
    public Tensor? Latents { get; init; }
    public Tensor? LatentNeighborIds { get; init; }
    public Tensor? LatentNeighborDist { get; init; }

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>Row indices [M_split] (int64) of one split.</summary>
    public Tensor IndicesOf(byte split) => nonzero(Split == split).squeeze(1);

    /// <summary>Loads a shard folder; fails naming the missing file or the inconsistency.</summary>
    public static TokenShards Load(string dir)
    {
        var infoPath = Path.Combine(dir, InfoFile);
        if (!File.Exists(infoPath))
            throw new FileNotFoundException($"'{dir}' is not a token shard folder (no {InfoFile}); create one with 'snce tokenize'", infoPath);
        var info = JsonSerializer.Deserialize<TokenShardsInfo>(File.ReadAllText(infoPath))
            ?? throw new InvalidDataException($"{infoPath} is empty");
        if (info.Format != TokenShardsInfo.CurrentFormat)
            throw new InvalidDataException($"{infoPath}: format '{info.Format}' is not '{TokenShardsInfo.CurrentFormat}'; re-run 'snce tokenize'");
        Tensor? Opt(string name) => File.Exists(Path.Combine(dir, name)) ? Npy.Load(Path.Combine(dir, name)) : null;
        var shards = new TokenShards
        {
            Info = info,
            Tokens = Npy.Load(Path.Combine(dir, "tokens.npy")),
            Labels = Npy.Load(Path.Combine(dir, "labels.npy")),
            Split = Npy.Load(Path.Combine(dir, "split.npy")),
            Codebook = Npy.Load(Path.Combine(dir, "codebook.npy")),
            CodeNeighborIds = Opt("code_neighbors_ids.npy"),
            CodeNeighborDist = Opt("code_neighbors_dist.npy"),
            Latents = Opt("latents.npy"),
            LatentNeighborIds = Opt("latent_neighbors_ids.npy"),
            LatentNeighborDist = Opt("latent_neighbors_dist.npy"),
        };
        shards.Validate(dir);
        return shards;
    }

    /// <summary>Writes every part (each file atomically, shards.json last so a half-written folder never loads).</summary>
    public void Save(string dir)
    {
        Validate(dir);
        Directory.CreateDirectory(dir);
        File.Delete(Path.Combine(dir, InfoFile));
        Npy.Save(Path.Combine(dir, "tokens.npy"), Tokens);
        Npy.Save(Path.Combine(dir, "labels.npy"), Labels);
        Npy.Save(Path.Combine(dir, "split.npy"), Split);
        Npy.Save(Path.Combine(dir, "codebook.npy"), Codebook);
        void Opt(string name, Tensor? t) { if (t is not null) Npy.Save(Path.Combine(dir, name), t); }
        Opt("code_neighbors_ids.npy", CodeNeighborIds);
        Opt("code_neighbors_dist.npy", CodeNeighborDist);
        Opt("latents.npy", Latents);
        Opt("latent_neighbors_ids.npy", LatentNeighborIds);
        Opt("latent_neighbors_dist.npy", LatentNeighborDist);
        AtomicFile.WriteAllText(Path.Combine(dir, InfoFile), JsonSerializer.Serialize(Info, JsonOptions));
    }

    void Validate(string where)
    {
        var m = Info.Count;
        void Shape(string name, Tensor? t, params long[] shape)
        {
            if (t is null) return;
            if (!t.shape.SequenceEqual(shape))
                throw new InvalidDataException($"{where}: {name} has shape [{string.Join(", ", t.shape)}], expected [{string.Join(", ", shape)}]");
        }
        Shape("tokens", Tokens, m, Info.SequenceLength);
        Shape("labels", Labels, m);
        Shape("split", Split, m);
        Shape("codebook", Codebook, Info.CodebookSize, Info.CodeDim);
        Shape("code_neighbors_ids", CodeNeighborIds, Info.CodebookSize, Info.NeighborsK);
        Shape("code_neighbors_dist", CodeNeighborDist, Info.CodebookSize, Info.NeighborsK);
        Shape("latents", Latents, m, Info.SequenceLength, Info.CodeDim);
        Shape("latent_neighbors_ids", LatentNeighborIds, m, Info.SequenceLength, Info.NeighborsK);
        Shape("latent_neighbors_dist", LatentNeighborDist, m, Info.SequenceLength, Info.NeighborsK);
        if (m > 0)
        {
            var (lo, hi) = (Tokens.min().item<int>(), Tokens.max().item<int>());
            if (lo < 0 || hi >= Info.CodebookSize)
                throw new InvalidDataException($"{where}: token ids span [{lo}, {hi}] but the codebook has {Info.CodebookSize} codes");
        }
    }

    public void Dispose()
    {
        foreach (var t in new[] { Tokens, Labels, Split, Codebook, CodeNeighborIds, CodeNeighborDist, Latents, LatentNeighborIds, LatentNeighborDist })
            t?.Dispose();
    }
}
