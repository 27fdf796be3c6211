using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Text;

/// <summary>captions.json of a token shard folder: the captions and which image has which.</summary>
public sealed record CaptionShardsInfo
{
    public const string CurrentFormat = "snce-captions/1";
    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    /// <summary>The text encoder's id (<see cref="MiniLmEncoder.ModelId"/>).</summary>
    [JsonPropertyName("encoder")] public required string Encoder { get; init; }
    [JsonPropertyName("encoder_dim")] public required int EncoderDim { get; init; }
    /// <summary>Word pieces the encoder read per caption at most.</summary>
    [JsonPropertyName("max_tokens")] public required int MaxTokens { get; init; }
    /// <summary>emoji-templates or captions.jsonl.</summary>
    [JsonPropertyName("source")] public required string Source { get; init; }
    /// <summary>Unique captions; the ids below index this list and the embedding arrays.</summary>
    [JsonPropertyName("captions")] public required string[] Captions { get; init; }
    /// <summary>Per image (shard row), the ids of its training captions.</summary>
    [JsonPropertyName("train")] public required int[][] Train { get; init; }
    /// <summary>Per image, the ids of its held-out phrasings (never trained on).</summary>
    [JsonPropertyName("held_out")] public required int[][] HeldOut { get; init; }
    /// <summary>Captions longer than <see cref="MaxTokens"/> word pieces (truncated when encoded).</summary>
    [JsonPropertyName("truncated")] public int Truncated { get; init; }
}

/// <summary>
/// The text side of a token shard folder made with <c>snce tokenize --text</c>: captions.json plus the encoder's outputs
/// for every unique caption, text_tokens.npy float16 [U, L, E] (zero past each caption's length), text_lengths.npy
/// int64 [U] and text_pooled.npy float32 [U, E]. L is the longest caption's length (≤ 32), so short captions cost little.
/// </summary>
public sealed class CaptionShards : IDisposable
{
    public const string InfoFile = "captions.json";
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    public required CaptionShardsInfo Info { get; init; }
    public required Tensor Tokens { get; init; }
    public required Tensor Lengths { get; init; }
    public required Tensor Pooled { get; init; }

    /// <summary>True when the shard folder has captions.</summary>
    public static bool Exists(string dir) => File.Exists(Path.Combine(dir, InfoFile));

    /// <summary>Encodes every unique caption of <paramref name="set"/> (through the disk cache) into caption shards.</summary>
    public static CaptionShards Build(CaptionSet set, TextEmbeddingCache cache, IProgress<(long Done, long Total)>? progress = null)
    {
        var ids = new Dictionary<string, int>();
        int Id(string c) { if (!ids.TryGetValue(c, out var i)) ids[c] = i = ids.Count; return i; }
        var train = set.Train.Select(cs => cs.Select(Id).ToArray()).ToArray();
        var heldOut = set.HeldOut.Select(cs => cs.Select(Id).ToArray()).ToArray();
        var captions = ids.OrderBy(kv => kv.Value).Select(kv => kv.Key).ToArray();
        var embedded = cache.Get(captions, progress);
        var (u, e) = (captions.Length, MiniLmEncoder.Dimension);
        var l = embedded.Max(x => x.Length);
        var tokens = new float[(long)u * l * e];
        var pooled = new float[(long)u * e];
        for (var i = 0; i < u; i++)
        {
            embedded[i].Tokens.CopyTo(tokens, (long)i * l * e);
            embedded[i].Pooled.CopyTo(pooled, (long)i * e);
        }
        var info = new CaptionShardsInfo
        {
            Encoder = MiniLmEncoder.ModelId, EncoderDim = e, MaxTokens = MiniLmEncoder.MaxTokens, Source = set.Source,
            Captions = captions, Train = train, HeldOut = heldOut, Truncated = embedded.Count(x => x.Truncated),
        };
        return new CaptionShards
        {
            Info = info,
            Tokens = tensor(tokens, [u, l, e]).to_type(ScalarType.Float16).DetachFromDisposeScope(),
            Lengths = tensor(embedded.Select(x => (long)x.Length).ToArray(), [u]).DetachFromDisposeScope(),
            Pooled = tensor(pooled, [u, e]).DetachFromDisposeScope(),
        };
    }

    /// <summary>Writes the arrays, then captions.json (so a half-written set never loads).</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        File.Delete(Path.Combine(dir, InfoFile));
        Npy.Save(Path.Combine(dir, "text_tokens.npy"), Tokens);
        Npy.Save(Path.Combine(dir, "text_lengths.npy"), Lengths);
        Npy.Save(Path.Combine(dir, "text_pooled.npy"), Pooled);
        AtomicFile.WriteAllText(Path.Combine(dir, InfoFile), JsonSerializer.Serialize(Info, JsonOptions));
    }

    /// <summary>Loads the captions of a shard folder of <paramref name="images"/> rows; fails naming what is wrong and the fix.</summary>
    public static CaptionShards Load(string dir, int images)
    {
        var path = Path.Combine(dir, InfoFile);
        if (!File.Exists(path))
            throw new FileNotFoundException($"'{dir}' has no captions ({InfoFile}); make the shards with 'snce tokenize --text' from a captioned data set (emoji, or a folder with captions.jsonl)", path);
        var info = JsonSerializer.Deserialize<CaptionShardsInfo>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path} is empty");
        if (info.Format != CaptionShardsInfo.CurrentFormat)
            throw new InvalidDataException($"{path}: format '{info.Format}' is not '{CaptionShardsInfo.CurrentFormat}'; re-run 'snce tokenize --text'");
        var shards = new CaptionShards
        {
            Info = info,
            Tokens = Npy.Load(Path.Combine(dir, "text_tokens.npy")),
            Lengths = Npy.Load(Path.Combine(dir, "text_lengths.npy")),
            Pooled = Npy.Load(Path.Combine(dir, "text_pooled.npy")),
        };
        var u = info.Captions.Length;
        if (info.Train.Length != images || info.HeldOut.Length != images
            || shards.Tokens.shape[0] != u || shards.Lengths.shape[0] != u || shards.Pooled.shape[0] != u
            || info.Train.Any(t => t.Length == 0) || info.Train.Concat(info.HeldOut).SelectMany(x => x).Any(i => i < 0 || i >= u))
        {
            shards.Dispose();
            throw new InvalidDataException($"{dir}: captions.json and the text arrays do not fit the {images} images of the shards; re-run 'snce tokenize --text'");
        }
        return shards;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Tokens.Dispose();
        Lengths.Dispose();
        Pooled.Dispose();
    }
}
