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
public sealed record NewRun(GeneratorKind Kind, string TokensDir, string Preset, LossSpec Loss, TrainingConfig Training,
    string RunDir, int CalibrationSamples = 65_536);

/// <summary>A run ready to train, with everything it holds open.</summary>
public sealed class PreparedRun : IDisposable
{
    readonly Tensor codebook;

    internal PreparedRun(TrainerSetup setup, TokenShards shards, Tensor codebook)
    {
        (Setup, Shards, this.codebook) = (setup, shards, codebook);
    }

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
    /// <summary>Prepares a new run; throws naming the problem (unknown preset, bad shards, a run folder that already holds a checkpoint).</summary>
    public static PreparedRun New(NewRun run, Device device)
    {
        var preset = GeneratorPresets.Get(run.Preset);
        var spec = run.Loss.Validate();                                  // options the loss does not read fail here, before any loading
        if (TryManifest(run.RunDir) is { } existing)
            throw new ArgumentException($"'{run.RunDir}' already holds a {existing.Model.Kind.Name()} checkpoint at step {existing.State.Step}; continue it with --resume {run.RunDir}, or choose another --out");
        var shards = TokenShards.Load(run.TokensDir);
        Tensor? codebook = null;
        try
        {
            var info = shards.Info;
            var model = new GeneratorConfig(run.Kind, GeneratorPresets.CanonicalName(run.Preset), preset, info.CodebookSize, info.Grid[0], info.Grid[1], info.Classes.Length);
            var tokensDir = Path.GetFullPath(run.TokensDir);
            var resolver = LossResolver.For(spec.Kind);
            var needs = resolver.Needs(spec, shards.Latents is not null, run.CalibrationSamples);
            if ((needs.SampleLatents || (needs.Anchor == NeighborAnchor.Latent && spec.Kind is LossKind.Snce or LossKind.Stochastic)) && shards.Latents is null)
                throw new ArgumentException($"--anchor latent needs per-token latents, but '{tokensDir}' stores '{info.Latents}'; re-run 'snce tokenize' with latents, or use --anchor code");
            CheckLabels(shards, tokensDir);
            var metric = Metric.Parse(info.Metric);
            codebook = Codebook(shards, device);
            ResolvedLoss loss;
            using (var sample = needs.AnchorSample > 0 ? SampleAnchors(shards, needs.SampleLatents, needs.AnchorSample, run.Training.Seed, device) : null)
                loss = resolver.Resolve(spec, needs, codebook, metric, sample);
            return Prepare(model, run.Training, loss, shards, codebook, tokensDir, run.RunDir, device);
        }
        catch
        {
            codebook?.Dispose();
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
        Tensor? codebook = null;
        try
        {
            CheckCompatible(m.Model, shards.Info, dir, runDir);
            var full = Path.GetFullPath(dir);
            if (m.Loss.NeedsLatents && shards.Latents is null)
                throw new ArgumentException($"the run '{runDir}' trains latent-anchored {m.Loss.Kind.Name()}, but '{full}' stores '{shards.Info.Latents}' latents; resume with the shards it was trained on (--tokens)");
            CheckLabels(shards, full);
            codebook = Codebook(shards, device);
            return Prepare(m.Model, m.Training, m.Loss, shards, codebook, full, runDir, device);
        }
        catch
        {
            codebook?.Dispose();
            shards.Dispose();
            throw;
        }
    }

    /// <summary>Throws naming both values when shards do not fit a generator (K, grid, classes).</summary>
    public static void CheckCompatible(GeneratorConfig model, TokenShardsInfo info, string tokensDir, string checkpoint)
    {
        if (info.CodebookSize != model.CodebookSize)
            throw new ArgumentException($"codebook size mismatch: the tokens in '{tokensDir}' have K = {info.CodebookSize} codes, but the checkpoint '{checkpoint}' was trained with K = {model.CodebookSize}");
        if (info.Grid[0] != model.GridHeight || info.Grid[1] != model.GridWidth)
            throw new ArgumentException($"token grid mismatch: '{tokensDir}' has {info.Grid[0]}x{info.Grid[1]} tokens per image, the checkpoint '{checkpoint}' {model.GridHeight}x{model.GridWidth}");
        if (info.Classes.Length != model.NumClasses)
            throw new ArgumentException($"class count mismatch: '{tokensDir}' has {info.Classes.Length} classes, the checkpoint '{checkpoint}' {model.NumClasses}");
    }

    static CheckpointManifest? TryManifest(string runDir)
    {
        try { return GeneratorCheckpoint.ReadManifest(runDir); }
        catch (FileNotFoundException) { return null; }
    }

    static PreparedRun Prepare(GeneratorConfig model, TrainingConfig training, ResolvedLoss loss, TokenShards shards, Tensor codebook,
        string tokensDir, string runDir, Device device)
    {
        model.Validate();
        training.Validate();
        var info = shards.Info;
        var metric = Metric.Parse(info.Metric);
        var train = new TokenDataset(shards, TokenShards.TrainSplit, device, loss.NeedsLatents);
        var validation = shards.IndicesOf(TokenShards.ValidationSplit).shape[0] > 0
            ? new TokenDataset(shards, TokenShards.ValidationSplit, device, loss.NeedsLatents) : null;
        var data = new GeneratorDataInfo
        {
            Tokens = tokensDir, Tokenizer = info.Tokenizer, Metric = info.Metric, CodeDim = info.CodeDim, Classes = info.Classes,
            ImageSize = info.ImageSize, Channels = info.Channels,
        };
        var setup = new TrainerSetup(model, training, loss, generator => loss.Create(codebook, metric, generator), train, validation, data, runDir, device);
        return new PreparedRun(setup, shards, codebook);
    }

    static void CheckLabels(TokenShards shards, string tokensDir)
    {
        var labels = shards.Labels;
        if (labels.numel() > 0 && labels.max().item<long>() >= Math.Max(1, shards.Info.Classes.Length))
            throw new InvalidDataException($"'{tokensDir}': labels reach {labels.max().item<long>()} but shards.json lists {shards.Info.Classes.Length} classes");
    }

    /// <summary>The shards' codebook, float32 on the device, held by the prepared run.</summary>
    static Tensor Codebook(TokenShards shards, Device device) =>
        shards.Codebook.to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();

    /// <summary>
    /// Up to <paramref name="count"/> training positions, drawn without replacement with a generator seeded from the run's
    /// seed: their token ids [M] and, with <paramref name="latents"/>, their latents [M, D] (float32).
    /// </summary>
    static AnchorSample SampleAnchors(TokenShards shards, bool latents, int count, long seed, Device device)
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
        return new AnchorSample(tokens, z);
    }
}
