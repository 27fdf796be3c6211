using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>Describes a token shard folder (shards.json). Sizes are per image unless named otherwise.</summary>
public sealed record TokenShardsInfo
{
    /// <summary>The format tag this version writes and reads; a shards.json with another tag is refused.</summary>
    public const string CurrentFormat = "snce-tokens/1";
    /// <summary>The format tag of this shards.json (<see cref="CurrentFormat"/> for shards this version wrote).</summary>
    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    /// <summary>The tokenizer checkpoint folder the tokens came from (absolute path).</summary>
    [JsonPropertyName("tokenizer")] public required string Tokenizer { get; init; }
    /// <summary>Data set name or folder the images came from.</summary>
    [JsonPropertyName("data")] public required string Data { get; init; }
    /// <summary>K, the number of VQ codes; every token is in [0, K).</summary>
    [JsonPropertyName("codebook_size")] public required int CodebookSize { get; init; }
    /// <summary>D, the length of one code vector (and of one stored latent).</summary>
    [JsonPropertyName("code_dim")] public required int CodeDim { get; init; }
    /// <summary>The tokenizer's metric name (l2, dot, cosine): quantization and SNCE targets use it.</summary>
    [JsonPropertyName("metric")] public required string Metric { get; init; }
    /// <summary>Token grid height and width; tokens are stored in raster order.</summary>
    [JsonPropertyName("grid")] public required int[] Grid { get; init; }
    /// <summary>Side of the square source images in pixels (what the tokenizer decodes back to).</summary>
    [JsonPropertyName("image_size")] public required int ImageSize { get; init; }
    /// <summary>Colour channels of the source images: 1 (grey) or 3 (RGB).</summary>
    [JsonPropertyName("channels")] public required int Channels { get; init; }
    /// <summary>Class names, index = label; empty when unlabeled.</summary>
    [JsonPropertyName("classes")] public string[] Classes { get; init; } = [];
    /// <summary>M, the number of tokenized images (train and validation together).</summary>
    [JsonPropertyName("count")] public required int Count { get; init; }
    /// <summary>What per-position latent information is stored: none, full (latents.npy) or topk (latent_neighbors_*.npy).</summary>
    [JsonPropertyName("latents")] public string Latents { get; init; } = "none";
    /// <summary>k of the code-anchored neighbor table and of top-k latent neighbors.</summary>
    [JsonPropertyName("neighbors_k")] public int NeighborsK { get; init; }
    /// <summary>Bytes each stored part costs per image (for docs and the tokenize summary).</summary>
    [JsonPropertyName("bytes_per_image")] public Dictionary<string, long> BytesPerImage { get; init; } = [];

    /// <summary>The tokenizer's identity: SHA-256 of its model.safetensors (null for shards made before it was recorded).</summary>
    [JsonPropertyName("tokenizer_sha256")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TokenizerSha256 { get; init; }

    /// <summary>
    /// Paired shards (image-to-image): where the pairs came from, e.g. <c>emoji-twitter:emoji-google</c> or a paired folder's
    /// absolute path (<c>snce tokenize --pairs</c>); the images and latents are the targets', source_tokens.npy the sources'.
    /// Null for plain shards.
    /// </summary>
    [JsonPropertyName("pairs")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Pairs { get; init; }

    /// <summary>T, tokens per image: grid height × width.</summary>
    [JsonIgnore] public int SequenceLength => Grid[0] * Grid[1];

    /// <summary>Throws naming the field when a value cannot describe shards (a damaged or hand-edited shards.json).</summary>
    internal void Validate(string path)
    {
        void Bad(string what) => throw new InvalidDataException($"{path}: {what}; the file is damaged or was edited, re-run 'snce tokenize'");
        if (Grid is null || Grid.Length != 2 || Grid[0] < 1 || Grid[1] < 1 || (long)Grid[0] * Grid[1] > 1 << 20) Bad($"grid must be two positive sizes, got [{string.Join(", ", Grid ?? [])}]");
        if (CodebookSize < 2) Bad($"codebook_size must be ≥ 2, got {CodebookSize}");
        if (CodeDim < 1) Bad($"code_dim must be ≥ 1, got {CodeDim}");
        if (Count < 0) Bad($"count must be ≥ 0, got {Count}");
        if (NeighborsK < 0 || NeighborsK > CodebookSize) Bad($"neighbors_k must be in [0, codebook_size], got {NeighborsK}");
        if (ImageSize < 1 || Channels is not (1 or 3)) Bad($"image_size {ImageSize} and channels {Channels} must be positive and 1 or 3");
        if (Tokenizer is null || Data is null || Metric is null || Latents is null || Classes is null || Classes.Any(c => c is null)) Bad("a text field is null");
    }
}

/// <summary>
/// A folder of tokenized images: everything a generator and the SNCE loss need, without the tokenizer.
/// Files: shards.json, tokens.npy int32 [M, T], labels.npy int64 [M] (−1 = none), split.npy uint8 [M]
/// (0 train, 1 validation), codebook.npy float32 [K, D]; optional code_neighbors_ids.npy int32 [K, k] +
/// code_neighbors_dist.npy float32 [K, k] (code-anchored table), latents.npy float16 [M, T, D] or
/// latent_neighbors_ids.npy int32 [M, T, k] + latent_neighbors_dist.npy float32 [M, T, k]. Paired shards
/// (<see cref="TokenShardsInfo.Pairs"/>) hold the targets in these files and the sources' tokens in source_tokens.npy int32 [M, T].
/// </summary>
public sealed class TokenShards : IDisposable
{
    /// <summary>The folder's description file, <see cref="TokenShardsInfo"/> as JSON.</summary>
    public const string InfoFile = "shards.json";
    /// <summary>The sources' tokens of paired shards.</summary>
    public const string SourceTokensFile = "source_tokens.npy";
    /// <summary>The pairs' names of paired shards (a JSON array of strings).</summary>
    public const string PairNamesFile = "pair_names.json";
    /// <summary>Values of <see cref="Split"/>: training and held-out (validation) images, the same as an <see cref="ImageDataset"/>'s.</summary>
    public const byte TrainSplit = ImageDataset.TrainSplit, ValidationSplit = ImageDataset.ValidationSplit;


    /// <summary>The folder's shards.json.</summary>
    public required TokenShardsInfo Info { get; init; }
    /// <summary>int32 [M, T]: each image's codes in raster order.</summary>
    public required Tensor Tokens { get; init; }
    /// <summary>int32 [M, T]: paired shards only, each pair's source image's codes (raster order, same tokenizer); null otherwise.</summary>
    public Tensor? SourceTokens { get; init; }
    /// <summary>Paired shards only: each pair's name (emoji: the <c>unified</c> code point; a paired folder: the file name), to find its images again; null otherwise.</summary>
    public string[]? PairNames { get; init; }
    /// <summary>int64 [M]: class index per image, −1 when unlabeled.</summary>
    public required Tensor Labels { get; init; }
    /// <summary>uint8 [M]: <see cref="TrainSplit"/> or <see cref="ValidationSplit"/> per image.</summary>
    public required Tensor Split { get; init; }
    /// <summary>float32 [K, D]: the tokenizer's code vectors, row k = code k.</summary>
    public required Tensor Codebook { get; init; }
    /// <summary>int32 [K, k]: for each code, its k nearest codes under the metric (nearest first); null when not stored.</summary>
    public Tensor? CodeNeighborIds { get; init; }
    /// <summary>float32 [K, k]: the metric's distance to each of <see cref="CodeNeighborIds"/>; null when not stored.</summary>
    public Tensor? CodeNeighborDist { get; init; }
    /// <summary>float16 [M, T, D]: each position's encoder output before quantization; null unless tokenized with full latents.</summary>
    public Tensor? Latents { get; init; }
    /// <summary>int32 [M, T, k]: each position's k codes nearest its latent; null unless tokenized with top-k latents.</summary>
    public Tensor? LatentNeighborIds { get; init; }
    /// <summary>float32 [M, T, k]: the latent's distance to each of <see cref="LatentNeighborIds"/>; null unless stored.</summary>
    public Tensor? LatentNeighborDist { get; init; }

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>Row indices [M_split] (int64) of one split.</summary>
    public Tensor IndicesOf(byte split) => nonzero(Split == split).squeeze(1);

    /// <summary>Loads a shard folder; fails naming the missing file or the inconsistency.</summary>
    public static TokenShards Load(string dir)
    {
        var folder = new ShardFolder(dir, "snce tokenize");
        var info = folder.ReadInfo<TokenShardsInfo>(InfoFile, $"'{dir}' is not a token shard folder (no {InfoFile}); create one with 'snce tokenize'",
            "shard description", TokenShardsInfo.CurrentFormat, i => i.Format);
        info.Validate(folder.PathOf(InfoFile));
        return folder.Build(() => new TokenShards
        {
            Info = info,
            Tokens = folder.Array("tokens.npy", ScalarType.Int32),
            SourceTokens = info.Pairs is null ? null : folder.Array(SourceTokensFile, ScalarType.Int32),
            PairNames = info.Pairs is null ? null : ReadNames(folder.PathOf(PairNamesFile)),
            Labels = folder.Array("labels.npy", ScalarType.Int64),
            Split = folder.Array("split.npy", ScalarType.Byte),
            Codebook = folder.Array("codebook.npy", ScalarType.Float32),
            CodeNeighborIds = folder.OptionalArray("code_neighbors_ids.npy", ScalarType.Int32),
            CodeNeighborDist = folder.OptionalArray("code_neighbors_dist.npy", ScalarType.Float32),
            Latents = folder.OptionalArray("latents.npy", ScalarType.Float16),
            LatentNeighborIds = folder.OptionalArray("latent_neighbors_ids.npy", ScalarType.Int32),
            LatentNeighborDist = folder.OptionalArray("latent_neighbors_dist.npy", ScalarType.Float32),
        }, shards => shards.Validate(dir));
    }

    /// <summary>Writes every part (each file atomically, shards.json last so a half-written folder never loads).</summary>
    public void Save(string dir)
    {
        Validate(dir);
        Directory.CreateDirectory(dir);
        File.Delete(Path.Combine(dir, InfoFile));
        Npy.Save(Path.Combine(dir, "tokens.npy"), Tokens);
        if (SourceTokens is not null) Npy.Save(Path.Combine(dir, SourceTokensFile), SourceTokens);
        else File.Delete(Path.Combine(dir, SourceTokensFile));
        if (PairNames is not null) AtomicFile.WriteAllText(Path.Combine(dir, PairNamesFile), JsonSerializer.Serialize(PairNames));
        else File.Delete(Path.Combine(dir, PairNamesFile));
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
        if ((Info.Pairs is null) != (SourceTokens is null))
            throw new InvalidDataException($"{where}: {(Info.Pairs is null ? "source tokens without a 'pairs' entry in shards.json" : "paired shards without source tokens")}; re-run 'snce tokenize'");
        Shape("source tokens", SourceTokens, m, Info.SequenceLength);
        if (Info.Pairs is not null && PairNames?.Length != m)
            throw new InvalidDataException($"{where}: {PairNames?.Length ?? 0} pair names for {m} pairs; re-run 'snce tokenize --pairs'");
        Shape("labels", Labels, m);
        Shape("split", Split, m);
        Shape("codebook", Codebook, Info.CodebookSize, Info.CodeDim);
        Shape("code_neighbors_ids", CodeNeighborIds, Info.CodebookSize, Info.NeighborsK);
        Shape("code_neighbors_dist", CodeNeighborDist, Info.CodebookSize, Info.NeighborsK);
        Shape("latents", Latents, m, Info.SequenceLength, Info.CodeDim);
        Shape("latent_neighbors_ids", LatentNeighborIds, m, Info.SequenceLength, Info.NeighborsK);
        Shape("latent_neighbors_dist", LatentNeighborDist, m, Info.SequenceLength, Info.NeighborsK);
        if (!Codebook.isfinite().all().item<bool>())
            throw new InvalidDataException($"{where}: the codebook has NaN or infinite values; the tokenizer diverged or the file is damaged, re-run 'snce tokenize' with a good tokenizer");
        void Ids(string name, Tensor? ids)
        {
            if (ids is null || ids.numel() == 0) return;
            var (lo, hi) = (ids.min().item<int>(), ids.max().item<int>());
            if (lo < 0 || hi >= Info.CodebookSize)
                throw new InvalidDataException($"{where}: {name} span [{lo}, {hi}] but the codebook has {Info.CodebookSize} codes; the file is damaged, re-run 'snce tokenize'");
        }
        Ids("token ids", Tokens);
        Ids("source token ids", SourceTokens);
        Ids("code neighbour ids", CodeNeighborIds);
        Ids("latent neighbour ids", LatentNeighborIds);
        foreach (var (name, t) in new[] { ("code neighbour distances", CodeNeighborDist), ("latents", Latents), ("latent neighbour distances", LatentNeighborDist) })
            if (t is not null && !t.isfinite().all().item<bool>())
                throw new InvalidDataException($"{where}: the {name} have NaN or infinite values; the file is damaged, re-run 'snce tokenize'");
        if (m > 0 && Split.gt(1).any().item<bool>())                        // 0 train, 1 validation
            throw new InvalidDataException($"{where}: split.npy holds values other than 0 (train) and 1 (validation); the file is damaged, re-run 'snce tokenize'");
    }

    static string[] ReadNames(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"paired shards need {path}; re-run 'snce tokenize --pairs'", path);
        try { return JsonSerializer.Deserialize<string[]>(File.ReadAllText(path)) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a JSON array of names ({e.Message}); re-run 'snce tokenize --pairs'"); }
    }

    /// <summary>Frees every tensor the folder was loaded into.</summary>
    public void Dispose()
    {
        foreach (var t in new[] { Tokens, SourceTokens, Labels, Split, Codebook, CodeNeighborIds,
 CodeNeighborDist, Latents, LatentNeighborIds, LatentNeighborDist })
            t?.Dispose();
    }
}
