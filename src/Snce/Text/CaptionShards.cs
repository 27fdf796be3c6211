using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.Data;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Text;

/// <summary>captions.json of a token shard folder: the captions and which image has which.</summary>
public sealed record CaptionShardsInfo
{
    /// <summary>The format tag this version writes and reads; a captions.json with another tag is refused.</summary>
    public const string CurrentFormat = "snce-captions/1";
    /// <summary>The format tag of this captions.json (<see cref="CurrentFormat"/> for files this version wrote).</summary>
    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    /// <summary>The text encoder's id (<see cref="MiniLmEncoder.ModelId"/>).</summary>
    [JsonPropertyName("encoder")] public required string Encoder { get; init; }
    /// <summary>E, the length of one encoder output vector (384 for MiniLM-L6).</summary>
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
    /// <summary>The folder's caption description file, <see cref="CaptionShardsInfo"/> as JSON.</summary>
    public const string InfoFile = "captions.json";
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>The folder's captions.json.</summary>
    public required CaptionShardsInfo Info { get; init; }
    /// <summary>float16 [U, L, E]: each unique caption's per-word-piece encoder outputs, zero past its length.</summary>
    public required Tensor Tokens { get; init; }
    /// <summary>int64 [U]: word pieces per caption (≤ L).</summary>
    public required Tensor Lengths { get; init; }
    /// <summary>float32 [U, E]: each caption's pooled sentence embedding.</summary>
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
        Npy.Save(Path.Combine(dir, TokensFile), Tokens);
        Npy.Save(Path.Combine(dir, LengthsFile), Lengths);
        Npy.Save(Path.Combine(dir, PooledFile), Pooled);
        AtomicFile.WriteAllText(Path.Combine(dir, InfoFile), JsonSerializer.Serialize(Info, JsonOptions));
    }

    /// <summary>
    /// Loads the captions of a shard folder of <paramref name="images"/> rows; a damaged or inconsistent set fails with one
    /// <see cref="InvalidDataException"/> naming the file, what is wrong and the fix (re-run 'snce tokenize --text').
    /// </summary>
    public static CaptionShards Load(string dir, int images)
    {
        var folder = new ShardFolder(dir, "snce tokenize --text");
        var info = ReadInfo(folder, dir);
        return folder.Build(() => new CaptionShards { Info = info, Tokens = folder.Array(TokensFile), Lengths = folder.Array(LengthsFile), Pooled = folder.Array(PooledFile) },
            shards => Check(shards, dir, images, folder.PathOf(TokensFile), folder.PathOf(LengthsFile), folder.PathOf(PooledFile)));
    }

    /// <summary>The checked captions.json of a shard folder alone, without its arrays (e.g. which instructions a run was trained on).</summary>
    public static CaptionShardsInfo ReadInfo(string dir) => ReadInfo(new ShardFolder(dir, "snce tokenize --text"), dir);

    static CaptionShardsInfo ReadInfo(ShardFolder folder, string dir)
    {
        var info = folder.ReadInfo<CaptionShardsInfo>(InfoFile,
            $"'{dir}' has no captions ({InfoFile}); make the shards with 'snce tokenize --text' from a captioned data set (emoji, or a folder with captions.jsonl)",
            "caption description", CaptionShardsInfo.CurrentFormat, i => i.Format);
        CheckInfo(info, folder.PathOf(InfoFile));
        return info;
    }

    const string TokensFile = "text_tokens.npy", LengthsFile = "text_lengths.npy", PooledFile = "text_pooled.npy";

    /// <summary>captions.json's fields, every one present and in range; the caption ids are checked against the arrays in <see cref="Check"/>.</summary>
    static void CheckInfo(CaptionShardsInfo info, string path)
    {
        string Fix() => "the file is damaged or cut short; re-run 'snce tokenize --text'";
        if (info.Encoder is not { Length: > 0 } || info.Source is null || info.Captions is null || info.Train is null || info.HeldOut is null)
            throw new InvalidDataException($"{path}: encoder, source, captions, train and held_out must all be given; {Fix()}");
        if (info.EncoderDim is < 1 or > MaxEncoderDim || info.MaxTokens is < 1 or > MaxTokensLimit)
            throw new InvalidDataException($"{path}: encoder_dim {info.EncoderDim} or max_tokens {info.MaxTokens} is out of range (1..{MaxEncoderDim}, 1..{MaxTokensLimit}); {Fix()}");
        if (info.Captions.Any(c => c is null) || info.Train.Any(t => t is null) || info.HeldOut.Any(t => t is null))
            throw new InvalidDataException($"{path}: a caption or an image's caption list is null; {Fix()}");
    }

    /// <summary>The largest encoder width and word-piece count a caption set may claim (MiniLM: 384 and 32); bounds what a crafted file makes the model allocate.</summary>
    const int MaxEncoderDim = 4096, MaxTokensLimit = 512;

    static void Check(CaptionShards s, string dir, int images, string tokensPath, string lengthsPath, string pooledPath)
    {
        var info = s.Info;
        var u = info.Captions.Length;
        var e = info.EncoderDim;
        void Expect(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{what}; the caption shards in '{dir}' are damaged or mixed up, re-run 'snce tokenize --text'");
        }
        static string Shape(Tensor t) => $"{t.dtype} [{string.Join(", ", t.shape)}]";
        Expect(s.Tokens.dtype == ScalarType.Float16 && s.Tokens.dim() == 3 && s.Tokens.shape[0] == u && s.Tokens.shape[1] is >= 1 and <= MaxTokensLimit && s.Tokens.shape[2] == e,
            $"{tokensPath} holds {Shape(s.Tokens)}, expected Float16 [{u}, L, {e}] ({u} captions, encoder_dim {e})");
        Expect(s.Lengths.dtype == ScalarType.Int64 && s.Lengths.dim() == 1 && s.Lengths.shape[0] == u, $"{lengthsPath} holds {Shape(s.Lengths)}, expected Int64 [{u}]");
        Expect(s.Pooled.dtype == ScalarType.Float32 && s.Pooled.dim() == 2 && s.Pooled.shape[0] == u && s.Pooled.shape[1] == e, $"{pooledPath} holds {Shape(s.Pooled)}, expected Float32 [{u}, {e}]");
        var l = s.Tokens.shape[1];
        Expect(u == 0 || (s.Lengths.min().item<long>() >= 1 && s.Lengths.max().item<long>() <= l), $"{lengthsPath}: caption lengths must be in 1..{l} (the word pieces stored per caption)");
        Expect(s.Tokens.isfinite().all().item<bool>() && s.Pooled.isfinite().all().item<bool>(), $"{tokensPath} or {pooledPath} has NaN or infinite values");
        Expect(info.Train.Length == images && info.HeldOut.Length == images,
            $"{Path.Combine(dir, InfoFile)} lists captions for {info.Train.Length} (held out: {info.HeldOut.Length}) images, the shards hold {images}");
        Expect(info.Train.All(t => t.Length > 0), $"{Path.Combine(dir, InfoFile)}: an image has no training caption");
        Expect(info.Train.Concat(info.HeldOut).SelectMany(x => x).All(i => i >= 0 && i < u), $"{Path.Combine(dir, InfoFile)}: a caption id is outside 0..{u - 1}");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Tokens.Dispose();
        Lengths.Dispose();
        Pooled.Dispose();
    }
}
