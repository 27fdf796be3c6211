using System.Security.Cryptography;
using System.Text;

namespace Snce.Text;

/// <summary>
/// Text embeddings on disk, one small file per caption under <c>CACHE/text/MODEL_ID/</c>, keyed by the encoder's model
/// id (its weights' hash) and the caption's SHA-256, so a changed model never reads stale vectors. The encoder is
/// only built when a caption is missing: a fully cached data set or prompt list needs no ONNX session.
/// </summary>
/// <remarks>
/// File layout (little-endian): "SNTE", int32 version 1, int32 length, int32 prompt tokens, int32 dimension,
/// float32 pooled [dimension], float32 tokens [length, dimension]. Files are written atomically.
/// </remarks>
public sealed class TextEmbeddingCache : IDisposable
{
    const uint Magic = 0x45544E53;   // "SNTE"
    const int Version = 1;
    const int Batch = 64;
    MiniLmEncoder? encoder;

    /// <param name="cacheRoot">The Snce cache (default <see cref="SncePaths.CacheDir"/>); embeddings go under text/MODEL_ID.</param>
    public TextEmbeddingCache(string? cacheRoot = null)
    {
        Folder = Path.Combine(cacheRoot ?? SncePaths.CacheDir, "text", MiniLmEncoder.ModelId);
    }

    /// <summary>The folder this model's embeddings live in.</summary>
    public string Folder { get; }

    /// <summary>Captions encoded (not found in the cache) since this object was made.</summary>
    public int Encoded { get; private set; }

    /// <summary>The cache file of a caption.</summary>
    public string PathOf(string caption)
    {
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(caption)));
        return Path.Combine(Folder, key[..2], key + ".bin");
    }

    /// <summary>Embeddings of <paramref name="captions"/> in order: from the cache, else encoded (in batches) and stored.</summary>
    public TextEmbedding[] Get(IReadOnlyList<string> captions, IProgress<(long Done, long Total)>? progress = null)
    {
        var result = new TextEmbedding?[captions.Count];
        var missing = new List<int>();
        for (var i = 0; i < captions.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(captions[i])) throw new ArgumentException("the prompt is empty; give a caption such as \"a red apple\"");
            result[i] = TryRead(PathOf(captions[i]));
            if (result[i] is null) missing.Add(i);
        }
        var unique = missing.Select(i => captions[i]).Distinct().ToList();
        var done = new Dictionary<string, TextEmbedding>();
        for (var start = 0; start < unique.Count; start += Batch)
        {
            encoder ??= new MiniLmEncoder();
            var chunk = unique.GetRange(start, Math.Min(Batch, unique.Count - start));
            var embedded = encoder.Encode(chunk);
            for (var j = 0; j < chunk.Count; j++)
            {
                Write(PathOf(chunk[j]), embedded[j]);
                done[chunk[j]] = embedded[j];
            }
            Encoded += chunk.Count;
            progress?.Report((start + chunk.Count, unique.Count));
        }
        foreach (var i in missing) result[i] = done[captions[i]];
        return result!;
    }

    static TextEmbedding? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var r = new BinaryReader(File.OpenRead(path));
            if (r.ReadUInt32() != Magic || r.ReadInt32() != Version) return null;
            var (length, promptTokens, dim) = (r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
            if (length < 1 || length > MiniLmEncoder.MaxTokens || dim != MiniLmEncoder.Dimension) return null;
            float[] Floats(int n) { var f = new float[n]; for (var i = 0; i < n; i++) f[i] = r.ReadSingle(); return f; }
            var pooled = Floats(dim);
            return new TextEmbedding(Floats(length * dim), length, pooled, promptTokens);
        }
        catch (EndOfStreamException) { return null; }   // a damaged file is re-encoded
    }

    static void Write(string path, TextEmbedding e)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic); w.Write(Version); w.Write(e.Length); w.Write(e.PromptTokens); w.Write(e.Dimension);
            foreach (var v in e.Pooled) w.Write(v);
            foreach (var v in e.Tokens) w.Write(v);
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <inheritdoc/>
    public void Dispose() => encoder?.Dispose();
}
