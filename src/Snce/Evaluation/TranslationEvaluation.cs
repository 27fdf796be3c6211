using Snce.Data;
using Snce.Editing;
using Snce.Sampling;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// What <see cref="TranslationEvaluation.Run"/> measured on the held-out pairs, each next to the trivial baselines.
/// </summary>
/// <param name="Pairs">held-out pairs scored.</param>
/// <param name="Generated">the run's translations against the ground-truth targets.</param>
/// <param name="CopySource">the baseline that outputs the source image (and its tokens) unchanged.</param>
/// <param name="NearestTrainingTarget">the baseline that outputs the target of the training pair whose source tokens agree with the held-out source's at the most positions (ties: the first).</param>
/// <param name="Reconstruction">the target's own tokens decoded by the tokenizer: what a generator that gets every token right reaches (token accuracy 1).</param>
/// <param name="Vendor">the vendor success rates of the same images, when a vendor classifier was given.</param>
public sealed record TranslationEvaluationScores(int Pairs, TranslationScores Generated, TranslationScores CopySource, TranslationScores NearestTrainingTarget,
    TranslationScores Reconstruction, VendorSuccessScores? Vendor = null);

/// <summary>The scores and the images behind them (uint8 [N, C, S, S] each; the caller disposes).</summary>
/// <param name="Scores">the numbers.</param>
/// <param name="Sources">the held-out sources.</param>
/// <param name="Targets">their ground-truth targets.</param>
/// <param name="Generated">the run's translations.</param>
public sealed record TranslationEvaluationSet(TranslationEvaluationScores Scores, Tensor Sources, Tensor Targets, Tensor Generated) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        Sources.Dispose(); Targets.Dispose(); Generated.Dispose();
    }
}

/// <summary>
/// Scores a paired run on the held-out pairs of its shards: each source is translated once and compared with its ground-truth
/// target image (PSNR, SSIM, L1) and the target's tokens (accuracy), next to "copy the source" and "nearest training target"
/// (nearest by source tokens: Hamming distance between the token grids) and the tokenizer's reconstruction of the target.
/// </summary>
public static class TranslationEvaluation
{
    /// <summary>
    /// Translates <paramref name="n"/> held-out pairs of <paramref name="shards"/> (all when null), spread evenly over the held-out split
    /// (pairs ⌊i·V/n⌋ of the V, in stored order), with <paramref name="editor"/>;
    /// the pixels come from <paramref name="pairs"/> (the shards' pairs reloaded: matched by name).
    /// </summary>
    /// <remarks>
    /// A run trained with instructions translates each held-out pair under its own instruction, from <paramref name="instructions"/> (the
    /// shards' captions, <c>snce tokenize --pairs ... --text</c>), and its nearest-training-target baseline looks only among the training
    /// pairs of the same instruction. With <paramref name="vendorClassifier"/> (<c>snce classifier train --label vendor</c>), the same four image
    /// sets (translations, sources, nearest training targets, ground-truth targets) also get their vendor success rate
    /// (<see cref="VendorSuccess"/>) for the shards' target vendor; a classifier that does not know that vendor or takes other images fails
    /// before anything is translated.
    /// </remarks>
    public static TranslationEvaluationSet Run(CheckpointEditor editor, TokenShards shards, ImagePairs pairs, int? n, GeneratorSamplingOptions options,
        Generator generator, IProgress<int>? progress = null, Text.CaptionShards? instructions = null, TrainedClassifier? vendorClassifier = null)
    {
        var (vendor, vendorLabel) = (default(Data.EmojiVendor), -1);
        if (vendorClassifier is not null)
        {
            vendor = PairedData.TargetVendor(shards.Info.Pairs ?? "")
                ?? throw new ArgumentException($"the pairs {shards.Info.Pairs} are not emoji of one vendor translated into another's style; a vendor success rate needs emoji pairs (e.g. emoji-twitter:emoji-google)");
            vendorLabel = VendorSuccess.TargetLabel(vendorClassifier, vendor, editor.Tokenizer.Config.Channels, editor.Tokenizer.Config.ImageSize);
        }
        if (!editor.IsPaired) throw new ArgumentException("translation metrics need a paired run (trained on 'snce tokenize --pairs' shards)");
        if (editor.TakesInstructions && instructions is null)
            throw new ArgumentException($"the run was trained with instructions, but '{shards.Info.Data}' holds none; score it on the shards it was trained on");
        if (shards.SourceTokens is null || shards.PairNames is null) throw new ArgumentException($"'{shards.Info.Data}' holds plain shards, not pairs");
        using var scope = NewDisposeScope();
        var held = shards.IndicesOf(TokenShards.ValidationSplit);
        var train = shards.IndicesOf(TokenShards.TrainSplit);
        if (held.shape[0] == 0) throw new ArgumentException($"the paired shards of {shards.Info.Pairs} hold no held-out pairs to score");
        if (train.shape[0] == 0) throw new ArgumentException($"the paired shards of {shards.Info.Pairs} hold no training pairs (the nearest-target baseline needs them)");
        var count = (int)Math.Min(n ?? held.shape[0], held.shape[0]);
        if (count < 1) throw new ArgumentException($"--n must be ≥ 1 (got {count})");
        // Spread over the held-out split (rows ⌊i·V/n⌋), not its first n: emoji are stored by category (InpaintingEvaluation.Rows).
        using (var picks = tensor(InpaintingEvaluation.Spread(held.shape[0], count)))
            held = held.index_select(0, picks);
        var rowOf = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < pairs.Count; i++) rowOf.TryAdd(pairs.Names[i], i);
        Tensor Rows(Tensor shardRows) => tensor(shardRows.data<long>().ToArray().Select(r =>
            rowOf.TryGetValue(shards.PairNames[r], out var row) ? row
                : throw new InvalidDataException($"the pair '{shards.PairNames[r]}' of the shards is not in {shards.Info.Pairs} any more; re-run 'snce tokenize --pairs'")).ToArray());

        var heldRows = Rows(held);
        var sources = pairs.Sources.index_select(0, heldRows);
        var targets = pairs.Targets.index_select(0, heldRows);
        var targetTokens = shards.Tokens.index_select(0, held).to_type(ScalarType.Int64);
        var sourceTokens = shards.SourceTokens.index_select(0, held).to_type(ScalarType.Int64);

        // The run's translations, one per source (under its own instruction), in batches so progress can be reported.
        using var text = editor.TakesInstructions ? new Text.TextConditions(instructions!, held, editor.Model.Config.Text!.MaxTokens, editor.Model.Device) : null;
        var images = new List<Tensor>();
        var tokens = new List<Tensor>();
        for (var start = 0; start < count; start += options.BatchSize)
        {
            var m = Math.Min(options.BatchSize, count - start);
            var instruction = text?.Draw(arange(start, start + m, dtype: ScalarType.Int64, device: editor.Model.Device), random: false);
            using var result = editor.Translate(sources.narrow(0, start, m), options, generator, instruction);
            images.Add(result.Images.clone());
            tokens.Add(result.Tokens.clone());
            progress?.Report(start + m);
        }
        var generated = cat(images, 0);
        var generatedScores = TranslationQuality.Score(generated, cat(tokens, 0), targets, targetTokens);

        var copy = TranslationQuality.Score(sources, sourceTokens, targets, targetTokens);

        Tensor? Instruction(Tensor shardRows) => editor.TakesInstructions
            ? tensor(shardRows.data<long>().ToArray().Select(r => (long)instructions!.Info.Train[r][0]).ToArray()) : null;
        var nearest = NearestBySourceTokens(sourceTokens, shards.SourceTokens.index_select(0, train).to_type(ScalarType.Int64),
            Instruction(held), Instruction(train));                                                                   // [N] index into train
        var nearestShardRows = train.index_select(0, nearest);
        var nearestTargets = pairs.Targets.index_select(0, Rows(nearestShardRows));
        var nearestScores = TranslationQuality.Score(nearestTargets, shards.Tokens.index_select(0, nearestShardRows), targets, targetTokens);

        Tensor reconstructed;
        using (no_grad())
            reconstructed = ImageInpainting.Decode(editor.Tokenizer, targetTokens.to(editor.Model.Device), options.BatchSize).cpu();
        var reconstruction = TranslationQuality.Score(reconstructed, targetTokens, targets, targetTokens);

        VendorSuccessScores? vendorScores = null;
        if (vendorClassifier is not null)
        {
            double Rate(Tensor images) => VendorSuccess.Rate(vendorClassifier.Model, images, vendorLabel);
            vendorScores = new VendorSuccessScores(EnumNames<Data.EmojiVendor>.Name(vendor), Rate(generated), Rate(sources), Rate(nearestTargets), Rate(targets),
                vendorClassifier.Info);
        }
        var scores = new TranslationEvaluationScores(count, generatedScores, copy, nearestScores, reconstruction, vendorScores);
        return new TranslationEvaluationSet(scores, sources.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope(), generated.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// For each query's source tokens [N, T], the row of <paramref name="pool"/> [M, T] that agrees with it at the most positions
    /// (smallest Hamming distance; ties: the lowest row) → int64 [N].
    /// </summary>
    /// <remarks>
    /// With <paramref name="queryGroups"/> [N] and <paramref name="poolGroups"/> [M] (int64: instruction ids), only pool rows of the query's
    /// own group compete (a query whose group has no pool row takes the lowest row).
    /// </remarks>
    public static Tensor NearestBySourceTokens(Tensor queries, Tensor pool, Tensor? queryGroups = null, Tensor? poolGroups = null)
    {
        using var scope = NewDisposeScope();
        var result = empty(queries.shape[0], dtype: ScalarType.Int64);
        const int chunk = 64;
        for (long s = 0; s < queries.shape[0]; s += chunk)
        {
            using var step = NewDisposeScope();
            var q = queries.narrow(0, s, Math.Min(chunk, queries.shape[0] - s));
            var agree = (q.unsqueeze(1) == pool.unsqueeze(0)).sum(2);                        // [n, M]
            if (queryGroups is not null && poolGroups is not null)
                agree = agree.masked_fill(queryGroups.narrow(0, s, q.shape[0]).unsqueeze(1) != poolGroups.unsqueeze(0), -1);
            // argmax returns the first maximum on the CPU, but ties are made explicit: highest agreement, then lowest row.
            var rows = arange(pool.shape[0], dtype: ScalarType.Int64);
            var key = agree * (pool.shape[0] + 1) - rows.unsqueeze(0);
            result.narrow(0, s, q.shape[0]).copy_(key.argmax(1));
        }
        return result.MoveToOuterDisposeScope();
    }
}
