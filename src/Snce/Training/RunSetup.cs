using Snce.Data;
using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>A new training run, as the command line describes it.</summary>
/// <param name="Kind">ar or mask.</param>
/// <param name="TokensDir">The token shard folder.</param>
/// <param name="Preset">Backbone preset name (tiny, S, B).</param>
/// <param name="Loss">The loss and its options; Anchor "auto" picks latent when the shards store latents, else code.</param>
/// <param name="Training">Schedule, optimizer, cadence, seed.</param>
/// <param name="RunDir">The run folder.</param>
/// <param name="CalibrationSamples">Anchors sampled from the training split to calibrate τ from a perplexity.</param>
/// <param name="Dropout">Backbone dropout in training (recorded in the generator config); 0 = none.</param>
/// <param name="Text">Condition on the shards' captions (made with <c>snce tokenize --text</c>) instead of class labels.</param>
public sealed record NewRun(GeneratorKind Kind, string TokensDir, string Preset, LossOptions Loss, TrainingConfig Training,
    string RunDir, int CalibrationSamples = 65_536, double Dropout = 0, bool Text = false);

/// <summary>A run ready to train, with everything it holds open.</summary>
public sealed class PreparedRun : IDisposable
{
    readonly Tensor codebook;
    readonly Text.CaptionShards? captions;

    internal PreparedRun(TrainerSetup setup, TokenShards shards, Tensor codebook, TauCalibrationResult? calibration, IReadOnlyList<string> notes, Text.CaptionShards? captions = null)
    {
        (Setup, Shards, this.codebook, Calibration, Notes, this.captions) = (setup, shards, codebook, calibration, notes, captions);
    }

    /// <summary>What the setup did or found that the user should hear about (a stale log set aside, unlabeled images, ...).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The shards' captions, for a text-conditioned run.</summary>
    public Text.CaptionShards? Captions => captions;

    /// <summary>What the trainer needs.</summary>
    public TrainerSetup Setup { get; }

    /// <summary>The loaded shards.</summary>
    public TokenShards Shards { get; }

    /// <summary>τ calibration of an SNCE loss (target and reached perplexity), when one ran.</summary>
    public TauCalibrationResult? Calibration { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Setup.Train.Dispose();
        Setup.Validation?.Dispose();
        Shards.Dispose();
        codebook.Dispose();
        captions?.Dispose();
    }
}

/// <summary>
/// Turns a token shard folder and options into a <see cref="TrainerSetup"/> (new run), or a checkpoint into one
/// (resume): the network's shape from the shards (K, grid, classes), the loss from <see cref="LossFactory"/>
/// with the shards' codebook and metric, τ calibration anchors sampled from the training split.
/// </summary>
public static class RunSetup
{
    /// <summary>Prepares a new run; throws naming the problem (unknown preset, bad shards, a run folder that already holds a checkpoint).</summary>
    public static PreparedRun New(NewRun run, Device device)
    {
        var preset = GeneratorPresets.Get(run.Preset) with { Dropout = run.Dropout };
        if (TryManifest(run.RunDir) is { } existing)
            throw new ArgumentException($"'{run.RunDir}' already holds a {existing.Model.Kind.Name()} checkpoint at step {existing.State.Step}; continue it with --resume {run.RunDir}, or choose another --out");
        var shards = TokenShards.Load(run.TokensDir);
        try
        {
            var info = shards.Info;
            var text = run.Text ? TextConfigOf(run.TokensDir, info) : null;
            var model = new GeneratorConfig(run.Kind, GeneratorPresets.CanonicalName(run.Preset), preset, info.CodebookSize, info.Grid[0], info.Grid[1],
                text is null ? info.Classes.Length : 0, text);
            var anchor = run.Loss.Anchor.ToLowerInvariant() == "auto" ? (shards.Latents is null ? "code" : "latent") : run.Loss.Anchor;
            var loss = run.Loss with { Anchor = anchor };
            var notes = new List<string>();
            var prepared = Prepare(model, run.Training, loss, tau: null, shards, Path.GetFullPath(run.TokensDir), run.RunDir, device, run.CalibrationSamples, notes);
            // Only now, when everything validated: a killed run's log must not mix with this one's.
            if (MetricsLog.SetAsideStale(run.RunDir) is { } stale)
                notes.Add($"'{run.RunDir}' held the log of a run that never saved a checkpoint ({stale} records); starting clean, the old log is in metrics.jsonl.stale (and tb.stale)");
            return prepared;
        }
        catch
        {
            shards.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Prepares to continue the run in <paramref name="runDir"/> with its own configuration; the shards are the
    /// checkpoint's unless <paramref name="tokensDir"/> is given, which must match them (K, grid, classes).
    /// </summary>
    public static PreparedRun Resume(string runDir, Device device, string? tokensDir = null)
    {
        var m = GeneratorCheckpoint.ReadManifest(runDir);
        var dir = tokensDir ?? m.Data.Tokens;
        var shards = TokenShards.Load(dir);
        try
        {
            CheckCompatible(m.Model, shards.Info, dir, runDir);
            CheckSameTokenizer(m.Data, shards.Info, dir, runDir);
            var notes = new List<string>();
            var prepared = Prepare(m.Model, m.Training, m.Loss, m.LossTau, shards, Path.GetFullPath(dir), runDir, device, 65_536, notes,
                tokenizerSha256: m.Data.TokenizerSha256 ?? shards.Info.TokenizerSha256);
            if (MetricsLog.DropAfter(runDir, m.State.Step) is > 0 and var dropped)
                notes.Add($"dropped {dropped} metrics records logged after the checkpoint's step {m.State.Step} (by an invocation that stopped without saving); those steps are trained again");
            return prepared;
        }
        catch
        {
            shards.Dispose();
            throw;
        }
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

    static PreparedRun Prepare(GeneratorConfig model, TrainingConfig training, LossOptions lossOptions, double? tau,
        TokenShards shards, string tokensDir, string runDir, Device device, int calibrationSamples, List<string> notes, string? tokenizerSha256 = null)
    {
        model.Validate();
        training.Validate();
        var info = shards.Info;
        var metric = Metric.Parse(info.Metric);
        LossFactory.IsFused(lossOptions);   // an unknown or unsupported implementation fails here, before any work
        var latentAnchored = LossFactory.ParseAnchor(lossOptions.Anchor) == NeighborAnchor.Latent && lossOptions.Name is "snce" or "stochastic";
        if (latentAnchored && shards.Latents is null)
            throw new ArgumentException($"--anchor latent needs per-token latents, but '{tokensDir}' stores '{info.Latents}'; re-run 'snce tokenize' with latents, or use --anchor code");
        var labels = shards.Labels;
        if (labels.numel() > 0 && labels.max().item<long>() >= Math.Max(1, info.Classes.Length))
            throw new InvalidDataException($"'{tokensDir}': labels reach {labels.max().item<long>()} but shards.json lists {info.Classes.Length} classes");
        if (labels.numel() > 0 && labels.min().item<long>() < -1)
            throw new InvalidDataException($"'{tokensDir}': labels reach {labels.min().item<long>()}; a label is a class id 0..{info.Classes.Length - 1} or −1 (no label); re-run 'snce tokenize'");
        if (info.Classes.Length > 0 && labels.numel() > 0 && labels.lt(0).sum().item<long>() is > 0 and var unlabeled)
            notes.Add($"{unlabeled:N0} of {labels.numel():N0} images in '{tokensDir}' have no label (−1): they train as unconditional (the null class of classifier-free guidance)");

        var captions = model.Text is { } textConfig ? Text.CaptionShards.Load(tokensDir, info.Count) : null;
        if (captions is not null && captions.Info.Encoder != model.Text!.Encoder)
            throw new ArgumentException($"'{tokensDir}': its captions were encoded by {captions.Info.Encoder}, the generator reads {model.Text.Encoder}; re-run 'snce tokenize --text'");
        var maxTokens = model.Text?.MaxTokens ?? 0;
        var train = new TokenDataset(shards, TokenShards.TrainSplit, device, latentAnchored, captions, maxTokens);
        var validation = shards.IndicesOf(TokenShards.ValidationSplit).shape[0] > 0
            ? new TokenDataset(shards, TokenShards.ValidationSplit, device, latentAnchored, captions, maxTokens) : null;

        // What the loss needs from the data: the codebook on the device and, to calibrate τ, anchors from the training split.
        var effective = tau is { } t && lossOptions.Perplexity is not null ? lossOptions with { Tau = t, Perplexity = null } : lossOptions;
        var codebook = shards.Codebook.to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();
        var isSnce = effective.Name.ToLowerInvariant() == "snce";
        double? usedTau = isSnce ? effective.Tau : null;
        TauCalibrationResult? calibration = null;
        if (isSnce && effective.Perplexity is not null)
        {
            using var anchors = CalibrationAnchors(shards, latentAnchored, calibrationSamples, training.Seed, device);
            // Calibration lives in the reference loss; the fused one then gets the calibrated τ.
            var probe = (SnceLoss)LossFactory.Create(effective with { Implementation = "reference" }, codebook, metric, anchors);
            (calibration, usedTau) = (probe.Calibration, probe.Tau);
            probe.Dispose();
        }
        var fixedOptions = usedTau is { } ut ? effective with { Tau = ut, Perplexity = null } : effective;
        if (effective.Name.ToLowerInvariant() == "label-smoothing" && effective.Perplexity is { } matchPerplexity)
        {
            // Label smoothing "with the same off-target mass" as SNCE at this perplexity: ε = mean 1 − q(x|z).
            fixedOptions = effective with { Epsilon = MatchedEpsilon(effective, shards, codebook, metric, matchPerplexity, training.Seed, device), Perplexity = null };
            lossOptions = lossOptions with { Epsilon = fixedOptions.Epsilon };
        }

        var data = new GeneratorDataInfo
        {
            Tokens = tokensDir, Tokenizer = info.Tokenizer, Metric = info.Metric, CodeDim = info.CodeDim, Classes = info.Classes,
            ImageSize = info.ImageSize, Channels = info.Channels, TokenizerSha256 = tokenizerSha256 ?? info.TokenizerSha256,
        };
        var setup = new TrainerSetup(model, training, lossOptions,
            generator => LossFactory.Create(fixedOptions, codebook, metric, null, generator),
            train, validation, data, runDir, device, LossTau: usedTau);
        return new PreparedRun(setup, shards, codebook, calibration, notes, captions);
    }

    /// <summary>
    /// ε of label smoothing matched to SNCE calibrated at <paramref name="perplexity"/> (latent-anchored when the shards
    /// store latents, else code-anchored): the mean off-target mass 1 − q(x|z) over 4,096 training positions.
    /// </summary>
    static double MatchedEpsilon(LossOptions options, TokenShards shards, Tensor codebook, Metric metric, double perplexity, long seed, Device device)
    {
        using var scope = NewDisposeScope();
        var latent = shards.Latents is not null && options.Anchor.ToLowerInvariant() != "code";
        const int sample = 4096;
        var tokens = CalibrationAnchors(shards, latents: false, sample, seed, device);
        var latents = latent ? CalibrationAnchors(shards, latents: true, sample, seed, device) : null;
        var snceOptions = options with { Name = "snce", Anchor = latent ? "latent" : "code", Tau = null, Perplexity = perplexity, Implementation = "reference" };
        using var snce = (SnceLoss)LossFactory.Create(snceOptions, codebook, metric, latent ? latents : tokens);
        return LabelSmoothingLoss.EpsilonMatching(snce, new TokenTargets(tokens, latents));
    }

    /// <summary>Up to <paramref name="count"/> anchors from the training split: latents [M, D] or token ids [M] (code anchors).</summary>
    static Tensor CalibrationAnchors(TokenShards shards, bool latents, int count, long seed, Device device)
    {
        using var scope = NewDisposeScope();
        var rows = shards.IndicesOf(TokenShards.TrainSplit);
        var t = shards.Info.SequenceLength;
        var total = rows.shape[0] * t;
        using var g = new Generator((ulong)seed + 7);
        var pick = randperm(total, generator: g, dtype: ScalarType.Int64).narrow(0, 0, Math.Min(count, total));
        var row = rows.index_select(0, pick.div(t, RoundingMode.floor));
        var col = pick % t;
        var result = latents
            ? shards.Latents!.index([row, col]).to_type(ScalarType.Float32)
            : shards.Tokens.index([row, col]).to_type(ScalarType.Int64);
        return result.to(device).MoveToOuterDisposeScope();
    }
}
