using Snce.Evaluation.Reports;
using Snce.Models;
using Snce.Sampling;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// A trained generator as an <see cref="ImageSource"/>: sample token grids from its checkpoint
/// (<see cref="GeneratorSampler"/>, EMA weights by default) and decode them with the tokenizer the run was trained on.
/// </summary>
public sealed class CheckpointImageSource : IDisposable
{
    readonly TokenGenerator model;
    readonly ITokenDecoder decoder;
    readonly List<Tensor> sampled = [];

    /// <summary>The run's checkpoint manifest (model, tokens, loss, step) the generator was rebuilt from.</summary>
    public CheckpointManifest Manifest { get; }
    /// <summary>How every image is sampled (guidance, steps, temperature, EMA or raw weights).</summary>
    public GeneratorSamplingOptions Options { get; }

    /// <summary>The run folder given.</summary>
    public string Run { get; }

    /// <param name="run">run folder (or its checkpoint/ folder) from <c>snce train</c>.</param>
    /// <param name="device">where to sample and decode.</param>
    /// <param name="options">sampling options (CFG scale, masked steps, temperature, batch).</param>
    /// <param name="ema">EMA weights (default) or the raw training weights.</param>
    /// <param name="tokenizerDir">tokenizer checkpoint; default: the one the run's manifest names.</param>
    public CheckpointImageSource(string run, Device device, GeneratorSamplingOptions options, bool ema = true, string? tokenizerDir = null)
    {
        Run = run;
        Options = options;
        Manifest = GeneratorCheckpoint.ReadManifest(run);
        if (Manifest.Model.Source is not null) throw new ArgumentException(PairedRunMessage(run));
        Snce.Tokenizer.TokenizerCheckpoint.CheckIdentity(tokenizerDir ?? Manifest.Data.Tokenizer, Manifest.Data.TokenizerSha256, $"the generator in '{run}'");
        var tokenizer = new TokenizerDecoder(tokenizerDir ?? Manifest.Data.Tokenizer, device);
        decoder = tokenizer;
        try
        {
            if (tokenizer.CodebookSize != Manifest.Model.CodebookSize || tokenizer.GridSize != Manifest.Model.GridHeight || tokenizer.GridSize != Manifest.Model.GridWidth)
                throw new InvalidDataException(
                    $"the tokenizer decodes K = {tokenizer.CodebookSize} codes on a {tokenizer.GridSize}x{tokenizer.GridSize} grid; the generator in {run} predicts K = {Manifest.Model.CodebookSize} on {Manifest.Model.GridHeight}x{Manifest.Model.GridWidth}");
            (model, _) = GeneratorCheckpoint.LoadModel(run, device, ema);
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
    }

    /// <summary>Why a paired run cannot be sampled from nothing, and what to run instead.</summary>
    public static string PairedRunMessage(string run) =>
        $"'{run}' is a paired (image-to-image) run: it generates from a source image, not from a class; translate one with 'snce edit --checkpoint {run} --image SRC.png' and score it with 'snce eval --checkpoint {run}'";

    /// <summary>Classes the generator is conditioned on (0 = unconditional).</summary>
    public int Classes => Manifest.Model.NumClasses;

    /// <summary><paramref name="count"/> images of <paramref name="classId"/> (null: unconditional) → uint8 [count, C, H, W] on the CPU.</summary>
    public Tensor Sample(int count, long? classId, Generator generator)
    {
        using var scope = NewDisposeScope();
        var conditions = full([count], classId ?? -1, ScalarType.Int64);
        var ids = GeneratorSampler.Sample(model, conditions, Options, generator);
        sampled.Add(ids.to_type(ScalarType.Int64).cpu().reshape(count, -1).DetachFromDisposeScope());
        var grid = ids.view(count, Manifest.Model.GridHeight, Manifest.Model.GridWidth);
        return decoder.Decode(grid).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Every token sequence sampled so far, int64 [n, T] on the CPU, in the order the images were returned (for the copy metric).</summary>
    public Tensor SampledTokens() => sampled.Count == 0
        ? throw new InvalidOperationException("nothing was sampled yet")
        : cat(sampled, 0);

    /// <summary>This source as the delegate evaluation takes.</summary>
    public ImageSource AsImageSource() => Sample;

    /// <summary>
    /// Validation hard CE from the run's training log (<c>metrics.jsonl</c>, <c>hard_ce</c> of <c>"split": "val"</c>
    /// records) at the checkpoint's step, or the last one before it; null when none was logged.
    /// </summary>
    public (double ValCe, long Step)? LoggedValCe()
    {
        var run = RunFolder.Of(Run);
        if (!run.HasMetrics) return null;
        var step = Manifest.State.Step;
        var points = RunReader.Read(run.Root).ValCe.Where(p => p.Step <= step).ToList();
        return points.Count == 0 ? null : (points[^1].Value, points[^1].Step);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        model.Dispose();
        decoder.Dispose();
        foreach (var t in sampled) t.Dispose();
    }
}
