using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Snce.Losses;

namespace Snce.Training;

/// <summary>
/// Reads manifests of format <c>snce-generator/1</c> (before the loss was resolved once): its <c>loss</c> was the
/// command line's options as strings, with the SNCE τ in use beside it as <c>loss_tau</c>. <see cref="Upgrade"/>
/// rewrites such a manifest, in place, into the current shape; the weights files did not change.
/// </summary>
static class CheckpointManifestV1
{
    /// <summary>The format tag.</summary>
    public const string Format = "snce-generator/1";

    /// <summary>The v1 loss options, as they were written.</summary>
    sealed record LossOptionsV1
    {
        [JsonPropertyName("name")] public string Name { get; init; } = "ce";
        [JsonPropertyName("tau")] public double? Tau { get; init; }
        [JsonPropertyName("perplexity")] public double? Perplexity { get; init; }
        [JsonPropertyName("top_k")] public int? TopK { get; init; }
        [JsonPropertyName("epsilon")] public double Epsilon { get; init; } = LossSpec.DefaultEpsilon;
        [JsonPropertyName("alpha")] public double Alpha { get; init; } = LossSpec.DefaultAlpha;
        [JsonPropertyName("delta")] public int Delta { get; init; } = LossSpec.DefaultDelta;
        [JsonPropertyName("anchor")] public string Anchor { get; init; } = "latent";
        [JsonPropertyName("implementation")] public string Implementation { get; init; } = "reference";
    }

    /// <summary>
    /// Replaces <c>loss</c> + <c>loss_tau</c> of a v1 manifest by the resolved loss they describe and sets the current
    /// format. v1 runs stored the resolved numbers already (the τ in use; label smoothing's ε after matching), so the
    /// loss trains on exactly as before; what v1 did not keep (the calibration report) stays null.
    /// </summary>
    public static void Upgrade(JsonObject manifest, string file)
    {
        var old = manifest["loss"]?.Deserialize<LossOptionsV1>(GeneratorCheckpoint.JsonOptions)
            ?? throw new InvalidDataException($"{file}: a {Format} manifest without 'loss'");
        var tau = manifest["loss_tau"]?.GetValue<double?>();
        var kind = EnumNames<LossKind>.Parse(old.Name);
        var anchor = EnumNames<NeighborAnchor>.Parse(old.Anchor);
        var implementation = LossNames.ParseImplementation(old.Implementation);
        var loss = kind switch
        {
            LossKind.CrossEntropy => new ResolvedLoss { Kind = kind, Implementation = implementation },
            LossKind.LabelSmoothing => new ResolvedLoss
            {
                Kind = kind, Implementation = implementation, Epsilon = old.Epsilon, Anchor = old.Perplexity is null ? null : anchor,
            },
            LossKind.Snce => new ResolvedLoss
            {
                Kind = kind, Implementation = implementation, Anchor = anchor, TopK = old.TopK,
                Tau = tau ?? old.Tau ?? throw new InvalidDataException($"{file}: an snce run without loss_tau or loss.tau"),
            },
            LossKind.Stochastic => new ResolvedLoss { Kind = kind, Implementation = implementation, Anchor = anchor, Alpha = old.Alpha, Delta = old.Delta },
            _ => throw new InvalidDataException($"{file}: unknown loss '{old.Name}'"),
        };
        manifest["loss"] = JsonSerializer.SerializeToNode(loss, GeneratorCheckpoint.JsonOptions);
        manifest.Remove("loss_tau");
        manifest["format"] = CheckpointManifest.CurrentFormat;
    }
}
