using Snce.Data;
using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>A new training run, as the command line describes it.</summary>
/// <param name="Kind">ar or mask.</param>
/// <param name="TokensDir">The token shard folder.</param>
/// <param name="Preset">Backbone preset name (tiny, S, B).</param>
/// <param name="Loss">The loss and its options; an auto anchor (null) picks latent when the shards store latents, else code.</param>
/// <param name="Training">Schedule, optimizer, cadence, seed.</param>
/// <param name="RunDir">The run folder.</param>
/// <param name="CalibrationSamples">Anchors sampled from the training split to calibrate τ from a perplexity.</param>
/// <param name="Dropout">Backbone dropout in training (recorded in the generator config); 0 = none.</param>
/// <param name="Text">Condition on the shards' captions (made with <c>snce tokenize --text</c>) instead of class labels.</param>
/// <param name="EmbeddingInit">How the input token embeddings start (recorded in the generator config).</param>
public sealed record NewRun(GeneratorKind Kind, string TokensDir, string Preset, LossSpec Loss, TrainingConfig Training,
    string RunDir, int CalibrationSamples = 65_536, double Dropout = 0, bool Text = false, EmbeddingInit EmbeddingInit = EmbeddingInit.Random);

/// <summary>A run ready to train, with everything it holds open.</summary>
public sealed class PreparedRun : IDisposable
{
    readonly Tensor codebook;
    readonly Text.CaptionShards? captions;
    readonly NearestCodes? codeTable;

    internal PreparedRun(TrainerSetup setup, TokenShards shards, Tensor codebook, IReadOnlyList<string> notes, Text.CaptionShards? captions = null,
        NearestCodes? codeTable = null)
    {
        (Setup, Shards, this.codebook, Notes, this.captions, this.codeTable) = (setup, shards, codebook, notes, captions, codeTable);
    }

    /// <summary>What the setup did or found that the user should hear about (a stale log set aside, unlabeled images, ...).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The shards' captions, for a text-conditioned run.</summary>
    public Text.CaptionShards? Captions => captions;

    /// <summary>What the trainer needs.</summary>
    public TrainerSetup Setup { get; }

    /// <summary>The loaded shards.</summary>
    public TokenShards Shards { get; }

    /// <summary>The τ calibration behind the loss's numbers (target and reached perplexity), when one ran (now or when the run started).</summary>
    public TauCalibrationResult? Calibration => Setup.Loss.Calibration;

    /// <inheritdoc/>
    public void Dispose()
    {
        Setup.Train.Dispose();
        Setup.Validation?.Dispose();
        Shards.Dispose();
        codebook.Dispose();
        captions?.Dispose();
        codeTable?.Dispose();
    }
}

/// <summary>
/// Turns a token shard folder and options into a <see cref="TrainerSetup"/> (new run), or a checkpoint into one
/// (resume): the network's shape from the shards (K, grid, classes), the loss resolved once by its
/// <see cref="LossResolver"/> with the shards' codebook and metric and anchors sampled from the training split
/// (a resumed run reads the resolved loss back from its checkpoint and never calibrates again).
/// </summary>
public static class RunSetup
{
    /// <summary>
    /// Prepares a new run; throws naming the problem (unknown preset, bad shards, a run folder that already holds a checkpoint).
    /// Only the run folder's writer (<paramref name="writesRunFolder"/>: rank 0 of a multi-process run) sets a stale log aside.
    /// </summary>
    public static PreparedRun New(NewRun run, Device device, bool writesRunFolder = true)
    {
        var preset = GeneratorPresets.Get(run.Preset) with { Dropout = run.Dropout };
        var spec = run.Loss.Validate();                                  // options the loss does not read fail here, before any loading
        if (TryManifest(run.RunDir) is { } existing)
            throw new ArgumentException($"'{run.RunDir}' already holds a {existing.Model.Kind.Name()} checkpoint at step {existing.State.Step}; continue it with --resume {run.RunDir}, or choose another --out");
        var shards = TokenShards.Load(run.TokensDir);
        return Owning(shards, device, codebook =>
        {
            var info = shards.Info;
            if (run.Text && info.Pairs is not null && !Text.CaptionShards.Exists(run.TokensDir))
                throw new ArgumentException($"'{run.TokensDir}' holds paired shards ({info.Pairs}) without instructions; make them with 'snce tokenize --pairs {info.Pairs} --text', or leave out --text");
            var text = run.Text ? TextConfigOf(run.TokensDir, info) : null;
            // Paired shards train an image-to-image generator: conditioned on the source's tokens (and on their classes, none for pairs);
            // with --text also on each pair's instruction ([text | source], InstructionConditioning).
            var source = info.Pairs is null ? null : new SourceConditioningConfig(info.SequenceLength);
            var model = new GeneratorConfig(run.Kind, GeneratorPresets.CanonicalName(run.Preset), preset, info.CodebookSize, info.Grid[0], info.Grid[1],
                text is null ? info.Classes.Length : 0, text, source) { EmbeddingInit = run.EmbeddingInit };
            var tokensDir = Path.GetFullPath(run.TokensDir);
            var resolver = LossResolver.For(spec.Kind);
            var needs = resolver.Needs(spec, shards.Latents is not null, run.CalibrationSamples, StoredLatentNeighbors(shards));
            if (!needs.FromLatentNeighbors && (needs.SampleLatents || (needs.Anchor == NeighborAnchor.Latent && spec.Kind is LossKind.Snce or LossKind.Stochastic)) && shards.Latents is null)
                throw new ArgumentException(LatentsMissing(spec.Kind, spec.TopK, spec.Implementation, info, tokensDir));
            var notes = new List<string>();
            if (spec.Kind == LossKind.Snce && spec.Anchor is null && needs.Anchor == NeighborAnchor.Code && StoredLatentNeighbors(shards) is > 0 and var stored)
                notes.Add($"'{tokensDir}' stores each position's {stored} nearest codes (--latents topk); latent-anchored SNCE reads them with --top-k ≤ {stored} " +
                          "(reference implementation); this run is code-anchored");
            CheckLabels(shards, tokensDir, notes);
            var metric = Metric.Parse(info.Metric);
            ResolvedLoss loss;
            using (var sample = needs.AnchorSample > 0 ? SampleAnchors(shards, needs.SampleLatents, needs.SampleLatentNeighbors, needs.AnchorSample, run.Training.Seed, device) : null)
                loss = resolver.Resolve(spec, needs, codebook, metric, sample);
            var prepared = Prepare(model, run.Training, loss, shards, codebook, tokensDir, run.RunDir, device, notes);
            // Only now, when everything validated: a killed run's log must not mix with this one's.
            if (writesRunFolder && MetricsLog.SetAsideStale(run.RunDir) is { } stale)
                notes.Add($"'{run.RunDir}' held the log of a run that never saved a checkpoint ({stale} records); starting clean, the old log is in metrics.jsonl.stale (and tb.stale)");
            return prepared;
        });
    }

    /// <summary>
    /// Prepares to continue the run in <paramref name="runDir"/> with its own configuration; the shards are the
    /// checkpoint's unless <paramref name="tokensDir"/> is given, which must match them (K, grid, classes). Only the run
    /// folder's writer (<paramref name="writesRunFolder"/>: rank 0) drops log records written after the checkpoint.
    /// </summary>
    public static PreparedRun Resume(string runDir, Device device, string? tokensDir = null, bool writesRunFolder = true)
    {
        var m = GeneratorCheckpoint.ReadManifest(runDir);
        var dir = tokensDir ?? m.Data.Tokens;
        var shards = TokenShards.Load(dir);
        return Owning(shards, device, codebook =>
        {
            CheckCompatible(m.Model, shards.Info, dir, runDir);
            CheckSameTokenizer(m.Data, shards.Info, dir, runDir);
            var full = Path.GetFullPath(dir);
            if (m.Loss.NeedsLatents && shards.Latents is null && LatentInputsFor(m.Loss, shards) is null)
                throw new ArgumentException($"the run '{runDir}' trains latent-anchored {m.Loss.Kind.Name()}, but '{full}' stores '{shards.Info.Latents}' latents; resume with the shards it was trained on (--tokens)");
            var notes = new List<string>();
            CheckLabels(shards, full, notes);
            var prepared = Prepare(m.Model, m.Training, m.Loss, shards, codebook, full, runDir, device, notes,
                tokenizerSha256: m.Data.TokenizerSha256 ?? shards.Info.TokenizerSha256);
            if (writesRunFolder && MetricsLog.DropAfter(runDir, m.State.Step) is > 0 and var dropped)
                notes.Add($"dropped {dropped} metrics records logged after the checkpoint's step {m.State.Step} (by an invocation that stopped without saving); those steps are trained again");
            return prepared;
        });
    }

    /// <summary>The text conditioning the captions of a shard folder call for (MiniLM's size and word-piece limit).</summary>
    static TextConditioningConfig TextConfigOf(string tokensDir, TokenShardsInfo info)
    {
        using var captions = Text.CaptionShards.Load(tokensDir, info.Count);
        return new TextConditioningConfig(captions.Info.Encoder, captions.Info.EncoderDim, captions.Info.MaxTokens);
    }

    /// <summary>Throws naming both values when shards do not fit a generator (K, grid, classes).</summary>
    public static void CheckCompatible(GeneratorConfig model, TokenShardsInfo info, string tokensDir, string checkpoint)
    {
        if (info.CodebookSize != model.CodebookSize)
            throw new ArgumentException($"codebook size mismatch: the tokens in '{tokensDir}' have K = {info.CodebookSize} codes, but the checkpoint '{checkpoint}' was trained with K = {model.CodebookSize}");
        if (info.Grid[0] != model.GridHeight || info.Grid[1] != model.GridWidth)
            throw new ArgumentException($"token grid mismatch: '{tokensDir}' has {info.Grid[0]}x{info.Grid[1]} tokens per image, the checkpoint '{checkpoint}' {model.GridHeight}x{model.GridWidth}");
        if ((model.Source is not null) != (info.Pairs is not null))
            throw new ArgumentException(model.Source is not null
                ? $"the checkpoint '{checkpoint}' is an image-to-image generator (conditioned on source tokens), but '{tokensDir}' holds plain shards; give it paired shards from 'snce tokenize --pairs'"
                : $"'{tokensDir}' holds paired shards ({info.Pairs}), but the checkpoint '{checkpoint}' is {model.Conditioning}-conditional; give it the plain shards it was trained on");
        if (model.Text is null && info.Classes.Length != model.NumClasses)
            throw new ArgumentException($"class count mismatch: '{tokensDir}' has {info.Classes.Length} classes, the checkpoint '{checkpoint}' {model.NumClasses}");
    }

    /// <summary>
    /// Throws when the shards come from another tokenizer than the run was trained on (the identity recorded in the
    /// run's manifest and in the shards); runs and shards made before identities were recorded pass.
    /// </summary>
    public static void CheckSameTokenizer(GeneratorDataInfo run, TokenShardsInfo shards, string tokensDir, string runDir)
    {
        if (run.TokenizerSha256 is { } expected && shards.TokenizerSha256 is { } actual && expected != actual)
            throw new InvalidDataException(
                $"'{tokensDir}' was made by another tokenizer (weights sha256 {Short(actual)}) than the run '{runDir}' was trained on " +
                $"({Short(expected)}, from '{run.Tokens}'); resume with the run's own shards (leave --tokens out) or start a new run");
    }

    /// <summary>The first 12 hex digits of a hash, for messages.</summary>
    public static string Short(string sha256) => sha256.Length > 12 ? sha256[..12] : sha256;

    static CheckpointManifest? TryManifest(string runDir)
    {
        try { return GeneratorCheckpoint.ReadManifest(runDir); }
        catch (FileNotFoundException) { return null; }
    }

    static PreparedRun Prepare(GeneratorConfig model, TrainingConfig training, ResolvedLoss loss, TokenShards shards, Tensor codebook,
        string tokensDir, string runDir, Device device, List<string> notes, string? tokenizerSha256 = null)
    {
        model.Validate();
        training.Validate();
        var info = shards.Info;
        var metric = Metric.Parse(info.Metric);
        var inputs = LatentInputsFor(loss, shards)
            ?? throw new ArgumentException(LatentsMissing(loss.Kind, loss.TopK, loss.Implementation, info, tokensDir));
        var captions = model.Text is not null ? Text.CaptionShards.Load(tokensDir, info.Count) : null;
        try
        {
            if (captions is not null && captions.Info.Encoder != model.Text!.Encoder)
                throw new ArgumentException($"'{tokensDir}': its captions were encoded by {captions.Info.Encoder}, the generator reads {model.Text.Encoder}; re-run 'snce tokenize --text'");
            if (captions is null && model.Source is not null && Text.CaptionShards.Exists(tokensDir) && model.Text is null)
                notes.Add($"'{tokensDir}' stores each pair's instruction, but this run is conditioned on the source image only (train with --text to condition on the instructions)");
        }
        catch { captions?.Dispose(); throw; }
        var maxTokens = model.Text?.MaxTokens ?? 0;
        var withSources = model.Source is not null;
        var train = new TokenDataset(shards, TokenShards.TrainSplit, device, inputs.Latents, captions, maxTokens, inputs.NeighborsK, withSources);
        var validation = shards.IndicesOf(TokenShards.ValidationSplit).shape[0] > 0
            ? new TokenDataset(shards, TokenShards.ValidationSplit, device, inputs.Latents, captions, maxTokens, inputs.NeighborsK, withSources) : null;
        // Code-anchored top-k reads the shards' code table (each code's nearest codes, computed when tokenizing) instead of rebuilding it.
        var codeTable = loss is { Kind: LossKind.Snce, Anchor: NeighborAnchor.Code, TopK: { } k, Implementation: LossImplementation.Reference }
            && k <= info.NeighborsK && shards.CodeNeighborIds is { } ids && shards.CodeNeighborDist is { } dist
            ? new NearestCodes(ids.to(device).DetachFromDisposeScope(), dist.to(device).DetachFromDisposeScope()) : null;
        var data = new GeneratorDataInfo
        {
            Tokens = tokensDir, Tokenizer = info.Tokenizer, Metric = info.Metric, CodeDim = info.CodeDim, Classes = info.Classes,
            ImageSize = info.ImageSize, Channels = info.Channels, TokenizerSha256 = tokenizerSha256 ?? info.TokenizerSha256, Pairs = info.Pairs,
        };
        var setup = new TrainerSetup(model, training, loss, () => loss.Create(codebook, metric, codeTable), train, validation, data, runDir, device,
            Codebook: codebook);
        return new PreparedRun(setup, shards, codebook, notes, captions, codeTable);
    }

    static void CheckLabels(TokenShards shards, string tokensDir, List<string> notes)
    {
        var labels = shards.Labels;
        var info = shards.Info;
        if (labels.numel() > 0 && labels.max().item<long>() >= Math.Max(1, info.Classes.Length))
            throw new InvalidDataException($"'{tokensDir}': labels reach {labels.max().item<long>()} but shards.json lists {info.Classes.Length} classes");
        if (labels.numel() > 0 && labels.min().item<long>() < -1)
            throw new InvalidDataException($"'{tokensDir}': labels reach {labels.min().item<long>()}; a label is a class id 0..{info.Classes.Length - 1} or −1 (no label); re-run 'snce tokenize'");
        if (info.Classes.Length > 0 && labels.numel() > 0 && labels.lt(0).sum().item<long>() is > 0 and var unlabeled)
            notes.Add($"{unlabeled:N0} of {labels.numel():N0} images in '{tokensDir}' have no label (−1): they train as unconditional (the null class of classifier-free guidance)");
    }

    /// <summary>What the batches carry for a loss's latent anchors: the latents, or each position's first <c>NeighborsK</c> stored nearest codes.</summary>
    readonly record struct LatentInputs(bool Latents, int NeighborsK);

    /// <summary>k of the shards' stored latent neighbours (<c>--latents topk</c>), 0 when they store none.</summary>
    static int StoredLatentNeighbors(TokenShards shards) => shards.LatentNeighborIds is null || shards.LatentNeighborDist is null ? 0 : shards.Info.NeighborsK;

    /// <summary>
    /// The latent inputs <paramref name="loss"/> trains on from these shards: none for losses without latent anchors, the latents
    /// where stored, else the stored nearest codes for latent-anchored top-k SNCE (reference implementation, top-k ≤ their k); null when none fits.
    /// </summary>
    static LatentInputs? LatentInputsFor(ResolvedLoss loss, TokenShards shards)
    {
        if (!loss.NeedsLatents) return new(false, 0);
        if (shards.Latents is not null) return new(true, 0);
        return loss is { Kind: LossKind.Snce, TopK: { } k, Implementation: LossImplementation.Reference } && k <= StoredLatentNeighbors(shards)
            ? new(false, k) : null;
    }

    /// <summary>Why a latent-anchored loss cannot train on these shards, and what to do instead.</summary>
    static string LatentsMissing(LossKind kind, int? topK, LossImplementation implementation, TokenShardsInfo info, string tokensDir)
    {
        var stored = info.Latents == "topk" ? info.NeighborsK : 0;
        if (stored > 0 && kind == LossKind.Snce)
            return (topK, implementation) switch
            {
                (_, LossImplementation.Fused) =>
                    $"--anchor latent with --loss-implementation fused computes the top-k from per-token latents, but '{tokensDir}' stores only each position's {stored} nearest codes (--latents topk); " +
                    "use --loss-implementation reference (it reads the stored neighbours), or re-run 'snce tokenize --latents full'",
                (null, _) =>
                    $"--anchor latent over the full codebook needs per-token latents, but '{tokensDir}' stores only each position's {stored} nearest codes (--latents topk); " +
                    $"give --top-k ≤ {stored} (top-k SNCE on the stored neighbours), use --anchor code, or re-run 'snce tokenize --latents full'",
                ({ } k, _) =>
                    $"--top-k {k} with --anchor latent needs each position's {k} nearest codes, but '{tokensDir}' stores {stored} (--latents topk); " +
                    $"give --top-k ≤ {stored}, or re-run 'snce tokenize --latents topk --neighbors-k {k}'",
            };
        return $"--anchor latent needs per-token latents, but '{tokensDir}' stores '{info.Latents}'" +
               (stored > 0 ? $" (each position's {stored} nearest codes, which only top-k SNCE reads)" : "") +
               "; re-run 'snce tokenize --latents full', or use --anchor code";
    }

    /// <summary>
    /// Runs <paramref name="prepare"/> with the shards' codebook on <paramref name="device"/>; the prepared run owns the shards and
    /// the codebook, and when anything throws before it exists both are disposed here.
    /// </summary>
    static PreparedRun Owning(TokenShards shards, Device device, Func<Tensor, PreparedRun> prepare)
    {
        Tensor? codebook = null;
        try
        {
            codebook = Codebook(shards, device);
            return prepare(codebook);
        }
        catch
        {
            codebook?.Dispose();
            shards.Dispose();
            throw;
        }
    }

    /// <summary>The shards' codebook, float32 on the device, held by the prepared run.</summary>
    static Tensor Codebook(TokenShards shards, Device device) =>
        shards.Codebook.to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();

    /// <summary>
    /// Up to <paramref name="count"/> training positions, drawn without replacement with a generator seeded from the run's
    /// seed: their token ids [M] and, with <paramref name="latents"/>, their latents [M, D] (float32); with
    /// <paramref name="latentNeighbors"/>, their stored nearest codes (ids int64, distances float32, [M, k]).
    /// </summary>
    static AnchorSample SampleAnchors(TokenShards shards, bool latents, bool latentNeighbors, int count, long seed, Device device)
    {
        using var scope = NewDisposeScope();
        var rows = shards.IndicesOf(TokenShards.TrainSplit);
        var t = shards.Info.SequenceLength;
        var total = rows.shape[0] * t;
        using var g = new Generator((ulong)seed + 7);
        var pick = randperm(total, generator: g, dtype: ScalarType.Int64).narrow(0, 0, Math.Min(count, total));
        var row = rows.index_select(0, pick.div(t, RoundingMode.floor));
        var col = pick % t;
        var tokens = shards.Tokens.index([row, col]).to_type(ScalarType.Int64).to(device).MoveToOuterDisposeScope();
        var z = latents ? shards.Latents!.index([row, col]).to_type(ScalarType.Float32).to(device).MoveToOuterDisposeScope() : null;
        var neighbors = latentNeighbors ? new NearestCodes(
            shards.LatentNeighborIds!.index([row, col]).to_type(ScalarType.Int64).to(device).MoveToOuterDisposeScope(),
            shards.LatentNeighborDist!.index([row, col]).to(device).MoveToOuterDisposeScope()) : null;
        return new AnchorSample(tokens, z, neighbors);
    }
}
