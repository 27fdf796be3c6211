using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Text;

/// <summary>
/// The captions of one split on the training device, turned into packed conditions (<see cref="TextConditioning.Pack"/>):
/// training draws one of each image's training captions per step (on the device, from its default generator the trainer
/// seeds per step, so a resumed run draws the same); validation always takes the first.
/// </summary>
public sealed class TextConditions : IDisposable
{
    readonly Tensor tokens, lengths, pooled, choices, counts;
    readonly int maxTokens;

    /// <summary>Copies the caption table and the rows <paramref name="rows"/> [M_split] (int64) of the shards to <paramref name="device"/>.</summary>
    public TextConditions(CaptionShards captions, Tensor rows, int maxTokens, Device device)
    {
        using var scope = NewDisposeScope();
        this.maxTokens = maxTokens;
        var r = rows.data<long>().ToArray();
        var per = r.Select(i => captions.Info.Train[i]).ToArray();
        var width = per.Max(p => p.Length);
        var table = new long[r.Length * width];
        for (var i = 0; i < r.Length; i++)
            for (var j = 0; j < width; j++) table[i * width + j] = per[i][j % per[i].Length];
        choices = tensor(table, [r.Length, width]).to(device).DetachFromDisposeScope();
        counts = tensor(per.Select(p => (long)p.Length).ToArray(), [r.Length]).to(device).DetachFromDisposeScope();
        var l = Math.Min(maxTokens, (int)captions.Tokens.shape[1]);
        tokens = captions.Tokens.narrow(1, 0, l).clone().to(device).DetachFromDisposeScope();
        lengths = captions.Lengths.clamp_max(l).to(device).DetachFromDisposeScope();
        pooled = captions.Pooled.clone().to(device).DetachFromDisposeScope();   // a copy: the caller keeps and disposes the shards
    }

    /// <summary>
    /// Conditions [B, L + 1, E + 1] of rows <paramref name="indices"/> [B]: a random training caption each when
    /// <paramref name="random"/> (drawn on the device from its default generator, which the trainer seeds per step), else the first.
    /// </summary>
    public Tensor Draw(Tensor indices, bool random)
    {
        using var scope = NewDisposeScope();
        var n = counts.index_select(0, indices);
        var pick = random
            ? minimum((DeviceRandom.DefaultUniform([indices.shape[0]], indices.device) * n).floor_().to_type(ScalarType.Int64), n - 1)
            : zeros_like(n);
        var ids = choices.index_select(0, indices).gather(1, pick.unsqueeze(1)).squeeze(1);
        return Of(ids).MoveToOuterDisposeScope();
    }

    /// <summary>Conditions of caption ids [B] (int64 on the device).</summary>
    public Tensor Of(Tensor captionIds)
    {
        using var scope = NewDisposeScope();
        return TextConditioning.Pack(tokens.index_select(0, captionIds), lengths.index_select(0, captionIds), pooled.index_select(0, captionIds), maxTokens)
            .MoveToOuterDisposeScope();
    }

    /// <summary>Conditions of encoder outputs (prompts at sampling time) on <paramref name="device"/>.</summary>
    public static Tensor Of(IReadOnlyList<TextEmbedding> embeddings, int maxTokens, Device device)
    {
        using var scope = NewDisposeScope();
        var e = embeddings[0].Dimension;
        var l = Math.Min(maxTokens, embeddings.Max(x => x.Length));
        var t = zeros(embeddings.Count, l, e);
        for (var i = 0; i < embeddings.Count; i++)
        {
            var n = Math.Min(l, embeddings[i].Length);
            t[i].narrow(0, 0, n).copy_(tensor(embeddings[i].Tokens, [embeddings[i].Length, e]).narrow(0, 0, n));
        }
        var lengths = tensor(embeddings.Select(x => (long)Math.Min(l, x.Length)).ToArray());
        var pooled = stack(embeddings.Select(x => tensor(x.Pooled)).ToArray());
        return TextConditioning.Pack(t, lengths, pooled, maxTokens).to(device).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in new[] { tokens, lengths, pooled, choices, counts }) t.Dispose();
    }
}
