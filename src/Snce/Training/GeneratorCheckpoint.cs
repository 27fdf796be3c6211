using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Snce.IO;
using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>What the generator was trained on: enough to decode its samples and to check new data against it.</summary>
public sealed record GeneratorDataInfo
{
    /// <summary>The token shard folder.</summary>
    [JsonPropertyName("tokens")] public string Tokens { get; init; } = "";
    /// <summary>The tokenizer checkpoint folder that decodes the tokens.</summary>
    [JsonPropertyName("tokenizer")] public string Tokenizer { get; init; } = "";
    /// <summary>The tokenizer's metric (l2, dot, cosine).</summary>
    [JsonPropertyName("metric")] public string Metric { get; init; } = "";
    /// <summary>Code vector dimension D.</summary>
    [JsonPropertyName("code_dim")] public int CodeDim { get; init; }
    /// <summary>Class names, index = class id.</summary>
    [JsonPropertyName("classes")] public string[] Classes { get; init; } = [];
    /// <summary>Image side in pixels.</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; }
    /// <summary>Image channels.</summary>
    [JsonPropertyName("channels")] public int Channels { get; init; }
    /// <summary>Paired runs: where the shards' pairs came from (<see cref="Data.TokenShardsInfo.Pairs"/>); null otherwise.</summary>
    [JsonPropertyName("pairs")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Pairs { get; init; }
    /// <summary>The tokenizer's identity: SHA-256 of its model.safetensors (null for runs made before it was recorded).</summary>
    [JsonPropertyName("tokenizer_sha256")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TokenizerSha256 { get; init; }
}

/// <summary>Where a run stands: enough, with the tensors, to continue it exactly.</summary>
public sealed record TrainerState
{
    /// <summary>Optimizer steps done.</summary>
    [JsonPropertyName("step")] public long Step { get; init; }
    /// <summary>Data order: epochs completed.</summary>
    [JsonPropertyName("epoch")] public long Epoch { get; init; }
    /// <summary>Data order: batches read in the current epoch.</summary>
    [JsonPropertyName("position")] public long Position { get; init; }
    /// <summary>Wall time trained so far, over all invocations.</summary>
    [JsonPropertyName("elapsed_seconds")] public double ElapsedSeconds { get; init; }
}

/// <summary>checkpoint.json: the run's whole configuration and state.</summary>
public sealed record CheckpointManifest
{
    /// <summary>The format tag (version 2: the loss resolved once; version 1 manifests are upgraded when read).</summary>
    public const string CurrentFormat = "snce-generator/2";
    /// <summary>Format tag; loaders read this one and snce-generator/1 and refuse others.</summary>
    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    /// <summary>The network.</summary>
    [JsonPropertyName("model")] public required GeneratorConfig Model { get; init; }
    /// <summary>The training settings.</summary>
    [JsonPropertyName("training")] public required TrainingConfig Training { get; init; }
    /// <summary>The loss with every number fixed when the run started (τ, ε, calibration report); resumed runs reuse it.</summary>
    [JsonPropertyName("loss")] public required ResolvedLoss Loss { get; init; }
    /// <summary>The data.</summary>
    [JsonPropertyName("data")] public required GeneratorDataInfo Data { get; init; }
    /// <summary>The step and data position.</summary>
    [JsonPropertyName("state")] public required TrainerState State { get; init; }
}

/// <summary>The tensors of a training checkpoint, by state-dict name (the caller owns them).</summary>
/// <param name="Model">fp32 master weights.</param>
/// <param name="Ema">EMA weights.</param>
/// <param name="ExpAvg">AdamW first moments.</param>
/// <param name="ExpAvgSq">AdamW second moments.</param>
/// <param name="OptimizerSteps">AdamW's step count (bias correction).</param>
/// <param name="GeneratorState">The training generator's state.</param>
public sealed record CheckpointTensors(
    IReadOnlyDictionary<string, Tensor> Model, IReadOnlyDictionary<string, Tensor> Ema,
    IReadOnlyDictionary<string, Tensor> ExpAvg, IReadOnlyDictionary<string, Tensor> ExpAvgSq,
    long OptimizerSteps, Tensor GeneratorState) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var d in new[] { Model, Ema, ExpAvg, ExpAvgSq })
            foreach (var t in d.Values) t.Dispose();
        GeneratorState.Dispose();
    }
}

/// <summary>
/// A generator checkpoint folder (written atomically with <see cref="CheckpointFolder"/>):
/// checkpoint.json (<see cref="CheckpointManifest"/>), model.safetensors (fp32 weights by state-dict name),
/// ema.safetensors (EMA weights), optimizer.safetensors (exp_avg.NAME, exp_avg_sq.NAME, step),
/// rng.safetensors (the training generator's state).
/// </summary>
public static class GeneratorCheckpoint
{
    /// <summary>The manifest file name.</summary>
    public const string ManifestFile = "checkpoint.json";
    /// <summary>The weights and state file names.</summary>
    public const string ModelFile = "model.safetensors", EmaFile = "ema.safetensors", OptimizerFile = "optimizer.safetensors", RngFile = "rng.safetensors";
    const string ExpAvgPrefix = "exp_avg.", ExpAvgSqPrefix = "exp_avg_sq.", StepKey = "step", GeneratorKey = "generator";

    /// <summary>JSON options of the manifest (snake_case, indented).</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    /// <summary>The checkpoint folder of a run folder.</summary>
    public static string FolderOf(string runDir) => new RunFolder(runDir).Checkpoint;

    /// <summary>
    /// Finds the checkpoint folder from a run folder or a checkpoint folder (recovering an interrupted swap);
    /// throws <see cref="FileNotFoundException"/> naming the path when there is none.
    /// </summary>
    public static string Resolve(string path)
    {
        foreach (var candidate in new[] { FolderOf(path), path })
        {
            var resolved = CheckpointFolder.Resolve(candidate);
            if (resolved is not null && File.Exists(Path.Combine(resolved, ManifestFile))) return resolved;
        }
        throw new FileNotFoundException($"no generator checkpoint in '{path}' (expected {Path.Combine(FolderOf(path), ManifestFile)}); train one with 'snce train'", path);
    }

    /// <summary>Reads checkpoint.json of a run or checkpoint folder.</summary>
    public static CheckpointManifest ReadManifest(string path)
    {
        var file = Path.Combine(Resolve(path), ManifestFile);
        CheckpointManifest? m;
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new InvalidDataException($"{file} is empty or not a JSON object");
            var format = node["format"] is JsonValue f && f.TryGetValue<string>(out var text) ? text : null;
            if (format == CheckpointManifestV1.Format) CheckpointManifestV1.Upgrade(node, file);
            else if (format != CheckpointManifest.CurrentFormat)
                throw new InvalidDataException($"{file}: format '{format}' is not '{CheckpointManifest.CurrentFormat}' (or '{CheckpointManifestV1.Format}', which is upgraded when read)");
            m = node.Deserialize<CheckpointManifest>(JsonOptions);
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"{file}: not a valid generator checkpoint manifest ({e.Message})");
        }
        if (m is null) throw new InvalidDataException($"{file} is empty");
        if (m.Model is null || m.Training is null || m.Loss is null || m.Data is null || m.State is null)
            throw new InvalidDataException($"{file}: a section (model, training, loss, data or state) is null; the manifest is damaged");
        var st = m.State;
        if (st.Step < 0 || st.Epoch < 0 || st.Position < 0 || !double.IsFinite(st.ElapsedSeconds) || st.ElapsedSeconds < 0)
            throw new InvalidDataException($"{file}: the state (step {st.Step}, epoch {st.Epoch}, position {st.Position}, elapsed {st.ElapsedSeconds} s) has a negative or non-finite value; the manifest is damaged or was edited");
        return m;
    }

    /// <summary>Writes the manifest into a folder being filled.</summary>
    public static void WriteManifest(string dir, CheckpointManifest manifest) =>
        AtomicFile.WriteAllText(Path.Combine(dir, ManifestFile), JsonSerializer.Serialize(manifest, JsonOptions));

    /// <summary>Writes the checkpoint of <paramref name="run"/> atomically: the tensors, then the manifest.</summary>
    public static void Save(RunFolder run, CheckpointManifest manifest, CheckpointTensors tensors) =>
        CheckpointFolder.Write(run.Checkpoint, dir =>
        {
            using var scope = NewDisposeScope();
            Safetensors.Save(Path.Combine(dir, ModelFile), tensors.Model);
            Safetensors.Save(Path.Combine(dir, EmaFile), tensors.Ema);
            var opt = new Dictionary<string, Tensor>();
            foreach (var (name, t) in tensors.ExpAvg) opt[ExpAvgPrefix + name] = t;
            foreach (var (name, t) in tensors.ExpAvgSq) opt[ExpAvgSqPrefix + name] = t;
            opt[StepKey] = tensor(tensors.OptimizerSteps);
            Safetensors.Save(Path.Combine(dir, OptimizerFile), opt);
            Safetensors.Save(Path.Combine(dir, RngFile), new Dictionary<string, Tensor> { [GeneratorKey] = tensors.GeneratorState });
            WriteManifest(dir, manifest);
        });

    /// <summary>Reads the training tensors of the checkpoint in <paramref name="dir"/> (a resolved checkpoint folder).</summary>
    public static CheckpointTensors LoadTensors(string dir)
    {
        Dictionary<string, Tensor> Read(string file) => Safetensors.Load(Path.Combine(dir, file)).Tensors;
        var opt = Read(OptimizerFile);
        var rng = Read(RngFile);
        Dictionary<string, Tensor> Moments(string prefix) => opt.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        using var step = opt[StepKey];
        return new CheckpointTensors(Read(ModelFile), Read(EmaFile), Moments(ExpAvgPrefix), Moments(ExpAvgSqPrefix), step.item<long>(), rng[GeneratorKey]);
    }

    /// <summary>
    /// Rebuilds the network from a checkpoint (fp32, on <paramref name="device"/>) with its EMA weights
    /// (<paramref name="ema"/>) or its raw weights.
    /// </summary>
    public static (TokenGenerator Model, CheckpointManifest Manifest) LoadModel(string path, Device device, bool ema = true)
    {
        var dir = Resolve(path);
        var manifest = ReadManifest(dir);
        var file = Path.Combine(dir, ema ? EmaFile : ModelFile);
        var (tensors, _) = Safetensors.Load(file);
        var model = new TokenGenerator(manifest.Model, device);
        model.eval();                                                                            // inference: no dropout
        try
        {
            using var noGrad = no_grad();
            foreach (var (name, p) in model.named_parameters())
            {
                if (!tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"{file}: missing tensor '{name}'");
                if (!t.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{file}: '{name}' has shape [{string.Join(", ", t.shape)}], the model expects [{string.Join(", ", p.shape)}]");
                if (!t.isfinite().all().item<bool>())
                    throw new InvalidDataException($"{file}: '{name}' has NaN or infinite values; the file is damaged (training never saves after a NaN): resume from a backup or retrain");
                p.copy_(t);
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        return (model, manifest);
    }
}
