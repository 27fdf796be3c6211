using System.Text.Json;
using Snce.IO;
using Snce.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// A classifier checkpoint folder: <c>model.safetensors</c> (weights, with the <see cref="ClassifierInfo"/> JSON in
/// its metadata under "classifier") and <c>classifier.json</c> (the same, for people). Written atomically;
/// the loader rebuilds the network from the stored config.
/// </summary>
public static class ClassifierCheckpoint
{
    /// <summary>The weights, with the <see cref="ClassifierInfo"/> JSON in the metadata (what the loader reads).</summary>
    public const string WeightsFile = "model.safetensors";
    /// <summary>The same <see cref="ClassifierInfo"/> as a readable file (not read back).</summary>
    public const string InfoFile = "classifier.json";
    const string MetadataKey = "classifier", FormatKey = "format", Format = "snce-classifier-1";

    static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <summary>Writes the checkpoint folder <paramref name="dir"/> atomically, replacing one already there.</summary>
    public static void Save(string dir, ImageClassifier model, ClassifierInfo info)

    {
        var json = JsonSerializer.Serialize(info, JsonOptions);
        CheckpointFolder.Write(dir, tmp =>
        {
            Safetensors.Save(Path.Combine(tmp, WeightsFile), model.state_dict(),
                new Dictionary<string, string> { [FormatKey] = Format, [MetadataKey] = json });
            AtomicFile.WriteAllText(Path.Combine(tmp, InfoFile), json + "\n");
        });
    }

    /// <summary>Rebuilds the classifier (in eval mode, on <paramref name="device"/>) and its info from a checkpoint folder.</summary>
    public static TrainedClassifier Load(string dir, Device? device = null)
    {
        var resolved = CheckpointFolder.Resolve(dir)
            ?? throw new DirectoryNotFoundException($"no classifier checkpoint at {dir}; train one with 'snce classifier train --out {dir}'");
        var (tensors, metadata) = Safetensors.Load(Path.Combine(resolved, WeightsFile));
        try
        {
            if (!metadata.TryGetValue(FormatKey, out var format) || format != Format || !metadata.TryGetValue(MetadataKey, out var json))
                throw new InvalidDataException($"{resolved} is not a Snce classifier checkpoint (format '{format}', expected '{Format}')");
            var info = JsonSerializer.Deserialize<ClassifierInfo>(json, JsonOptions)
                ?? throw new InvalidDataException($"{resolved}: empty classifier metadata");
            var model = new ImageClassifier(info.Config);
            var expected = model.state_dict();
            var missing = expected.Keys.Except(tensors.Keys).ToList();
            if (missing.Count > 0) throw new InvalidDataException($"{resolved}: weights missing for {string.Join(", ", missing)}");
            using (no_grad())
                foreach (var (name, target) in expected)
                {
                    if (!tensors[name].shape.SequenceEqual(target.shape))
                        throw new InvalidDataException($"{resolved}: '{name}' has shape [{string.Join(", ", tensors[name].shape)}], the config implies [{string.Join(", ", target.shape)}]");
                    target.copy_(tensors[name]);
                }
            if (device is not null) model.to(device);
            model.eval();
            return new TrainedClassifier(model, info);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
