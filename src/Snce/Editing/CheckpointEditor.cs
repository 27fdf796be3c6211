using Snce.Models;
using Snce.Sampling;
using Snce.Tokenizer;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>
/// A trained generator run and the tokenizer it was trained on, loaded for editing: <see cref="Inpaint"/> inpaints images
/// with them (<see cref="ImageInpainting"/>), <see cref="Translate"/> translates source images with a paired run
/// (<see cref="ImageTranslation"/>). What <c>snce edit</c> and <c>snce eval --inpaint | --pairs</c> share.
/// </summary>
public sealed class CheckpointEditor : IDisposable
{
    /// <param name="run">run folder (or its checkpoint/ folder) from <c>snce train</c>.</param>
    /// <param name="device">where to tokenize, sample and decode.</param>
    /// <param name="ema">EMA weights (default) or the raw training weights.</param>
    /// <param name="tokenizerDir">tokenizer checkpoint; default: the one the run's manifest names.</param>
    public CheckpointEditor(string run, Device device, bool ema = true, string? tokenizerDir = null)
    {
        Manifest = GeneratorCheckpoint.ReadManifest(run);
        Tokenizer = TokenizerCheckpoint.Load(tokenizerDir ?? Manifest.Data.Tokenizer, device);
        try
        {
            (Model, _) = GeneratorCheckpoint.LoadModel(run, device, ema);
            try { ImageInpainting.CheckPair(Model, Tokenizer); }
            catch { Model.Dispose(); throw; }
        }
        catch
        {
            Tokenizer.Dispose();
            throw;
        }
    }

    /// <summary>The run's manifest.</summary>
    public CheckpointManifest Manifest { get; }
    /// <summary>The generator (eval weights).</summary>
    public TokenGenerator Model { get; }
    /// <summary>The tokenizer that encodes the sources and decodes the results.</summary>
    public VqTokenizer Tokenizer { get; }
    /// <summary>How the tokenizer's tokens map to pixels.</summary>
    public TokenFootprint Footprint => TokenFootprint.Of(Tokenizer.Config);

    /// <summary>True when the run is an image-to-image generator (trained on paired shards): it takes a source image, not a region.</summary>
    public bool IsPaired => Model.Config.Source is not null;

    /// <summary>Inpaints uint8 images [N, C, S, S] in <paramref name="region"/> under <paramref name="conditions"/> [N, ...].</summary>
    public InpaintingResult Inpaint(Tensor images, TokenMask region, Tensor conditions, GeneratorSamplingOptions options, Generator generator) =>
        ImageInpainting.Run(Model, Tokenizer, images, region, conditions, options, generator);

    /// <summary>
    /// Translates uint8 source images [N, C, S, S] with a paired run: one generated target per source; a run trained with instructions
    /// takes one per source, <paramref name="instructions"/> [N, L + 1, E + 1] (packed text conditions).
    /// </summary>
    public TranslationResult Translate(Tensor sources, GeneratorSamplingOptions options, Generator generator, Tensor? instructions = null) =>
        ImageTranslation.Run(Model, Tokenizer, sources, options, generator, instructions);

    /// <summary>True when the paired run was trained with instructions ([text | source] prefix): it takes one per source.</summary>
    public bool TakesInstructions => Model.Config is { Source: not null, Text: not null };

    /// <inheritdoc/>
    public void Dispose()
    {
        Model.Dispose();
        Tokenizer.Dispose();
    }
}
