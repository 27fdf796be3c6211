namespace Snce.Text;

/// <summary>
/// One caption through the text encoder: per-token hidden states and the pooled sentence vector.
/// </summary>
/// <param name="Tokens">Hidden states of the last layer, row-major [Length, Dimension] ([CLS] first, [SEP] last).</param>
/// <param name="Length">Word pieces the encoder read (≤ <see cref="MiniLmEncoder.MaxTokens"/>, [CLS] and [SEP] included).</param>
/// <param name="Pooled">The sentence vector [Dimension]: the L2-normalized mean of <paramref name="Tokens"/> (sentence-transformers' pooling).</param>
/// <param name="PromptTokens">Word pieces the whole caption has; more than <paramref name="Length"/> when it was truncated.</param>
public sealed record TextEmbedding(float[] Tokens, int Length, float[] Pooled, int PromptTokens)
{
    /// <summary>True when the caption had more word pieces than the encoder reads.</summary>
    public bool Truncated => PromptTokens > Length;

    /// <summary>Feature dimension.</summary>
    public int Dimension => Pooled.Length;

    /// <summary>Cosine similarity of two pooled vectors.</summary>
    public static double Cosine(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"vectors of different sizes ({a.Length} and {b.Length})");
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++) { dot += a[i] * (double)b[i]; na += a[i] * (double)a[i]; nb += b[i] * (double)b[i]; }
        return dot / Math.Sqrt(Math.Max(1e-30, na * nb));
    }
}
