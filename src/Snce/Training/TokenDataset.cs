using Snce.Data;
using Snce.Losses;
using Snce.Objectives;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// One split of a token shard folder, resident on the training device: ids [M, T] (int32), labels [M]
/// and optionally latents [M, T, D] (fp16) or each position's stored nearest codes (ids int32 and distances
/// float32, [M, T, k]) and, for a paired run, the sources' ids [M, T] (int32), gathered into <see cref="TokenBatch"/>es by index.
/// </summary>
public sealed class TokenDataset : IDisposable
{
    readonly Tensor tokens, labels;
    readonly Tensor? latents, neighborIds, neighborDist, sources;
    readonly Text.TextConditions? text;

    /// <summary>
    /// Copies the rows of <paramref name="split"/> to <paramref name="device"/> (latents only when <paramref name="withLatents"/>;
    /// the first <paramref name="latentNeighborsK"/> stored latent neighbours of each position when it is &gt; 0, as a
    /// <c>--latents topk</c> shard holds them). With <paramref name="captions"/> the conditions are captions (packed for a
    /// prefix of <paramref name="maxTokens"/>) instead of labels; with <paramref name="withSources"/> they are
    /// [label | source ids] (<see cref="Models.SourceTokenConditioning"/>; paired shards only); with both, [caption | label | source ids]
    /// (<see cref="Models.InstructionConditioning"/>: a pair's instruction and its source).
    /// </summary>
    public TokenDataset(TokenShards shards, byte split, Device device, bool withLatents, Text.CaptionShards? captions = null, int maxTokens = 0,
        int latentNeighborsK = 0, bool withSources = false)
    {
        using var scope = NewDisposeScope();
        if (withLatents && shards.Latents is null)
            throw new InvalidDataException($"latent-anchored targets need per-token latents, but the shards store '{shards.Info.Latents}'; re-run 'snce tokenize' with latents, or use --anchor code");
        if (latentNeighborsK > 0 && (shards.LatentNeighborIds is null || shards.LatentNeighborDist is null || latentNeighborsK > shards.Info.NeighborsK))
            throw new InvalidDataException($"the batches need each position's {latentNeighborsK} nearest codes, but the shards store '{shards.Info.Latents}' latents with k = {shards.Info.NeighborsK}; re-run 'snce tokenize --latents topk --neighbors-k {latentNeighborsK}'");
        if (withSources && shards.SourceTokens is null)
            throw new InvalidDataException($"a source-conditioned generator trains on paired shards, but '{shards.Info.Data}' has no source tokens; make them with 'snce tokenize --pairs'");
        var idx = shards.IndicesOf(split);
        tokens = shards.Tokens.index_select(0, idx).to(device).DetachFromDisposeScope();
        labels = shards.Labels.index_select(0, idx).to_type(ScalarType.Int64).to(device).DetachFromDisposeScope();
        latents = withLatents ? shards.Latents!.index_select(0, idx).to(device).DetachFromDisposeScope() : null;
        if (latentNeighborsK > 0)
        {
            // Nearest first: the first k of the stored neighbours are the top-k.
            neighborIds = shards.LatentNeighborIds!.index_select(0, idx).narrow(2, 0, latentNeighborsK).to(device).DetachFromDisposeScope();
            neighborDist = shards.LatentNeighborDist!.index_select(0, idx).narrow(2, 0, latentNeighborsK).to(device).DetachFromDisposeScope();
        }
        sources = withSources ? shards.SourceTokens!.index_select(0, idx).to(device).DetachFromDisposeScope() : null;
        text = captions is null ? null : new Text.TextConditions(captions, idx, maxTokens, device);
        Count = idx.shape[0];
    }

    /// <summary>Rows in this split.</summary>
    public long Count { get; }

    /// <summary>
    /// The batch of rows <paramref name="indices"/> [B] (int64 on the device): ids as int64, latents as fp32, latent neighbours
    /// as int64 ids and fp32 distances [B, T, k]. Captioned data takes one random training caption per row when
    /// <paramref name="drawCaptions"/> (on the device, from its default generator: <see cref="Text.TextConditions.Draw"/>),
    /// else the first.
    /// </summary>
    public TokenBatch Batch(Tensor indices, bool drawCaptions = false)
    {
        using var scope = NewDisposeScope();
        var t = tokens.index_select(0, indices).to_type(ScalarType.Int64).MoveToOuterDisposeScope();
        var source = sources is null ? null : Models.SourceTokenConditioning.Pack(labels.index_select(0, indices), sources.index_select(0, indices));
        var c = (text, source) switch
        {
            ({ } tx, { } src) => Models.InstructionConditioning.Pack(tx.Draw(indices, drawCaptions), src),   // an instruction edit: [text | source]
            ({ } tx, null) => tx.Draw(indices, drawCaptions),
            (null, { } src) => src,
            _ => labels.index_select(0, indices),
        };
        c = c.MoveToOuterDisposeScope();
        var z = latents?.index_select(0, indices).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
        var neighbors = neighborIds is null ? null : new NearestCodes(
            neighborIds.index_select(0, indices).to_type(ScalarType.Int64).MoveToOuterDisposeScope(),
            neighborDist!.index_select(0, indices).MoveToOuterDisposeScope());
        return new TokenBatch(t, c, z) { IdsChecked = true, LatentNeighbors = neighbors };   // TokenShards checks every id against K when it loads
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        tokens.Dispose();
        labels.Dispose();
        latents?.Dispose();
        neighborIds?.Dispose();
        neighborDist?.Dispose();
        sources?.Dispose();
        text?.Dispose();
    }
}
