using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.IO;
using Snce.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// A tokenizer checkpoint folder, written atomically with <see cref="CheckpointFolder"/>:
/// config.json (<see cref="TokenizerConfig"/>: the architecture, so the folder alone rebuilds the model),
/// model.safetensors (every parameter and buffer, including the codebook and quantizer statistics),
/// and, for training runs, optimizer.safetensors (AdamW moments and step per parameter) and training.json
/// (<see cref="TokenizerTrainingState"/>).
/// </summary>
public static class TokenizerCheckpoint
{
    /// <summary>The format tag config.json carries; a folder with another tag is refused.</summary>
    public const string Format = "snce-tokenizer/1";
    /// <summary>
    /// The folder's files: the architecture and format tag, every parameter and buffer by state-dict key, and (training
    /// checkpoints only) AdamW's moments and the <see cref="TokenizerTrainingState"/> a resume continues from.
    /// </summary>
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", OptimizerFile = "optimizer.safetensors", StateFile = "training.json";



    static readonly JsonSerializerOptions StateJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Writes the folder (replacing an older checkpoint there atomically).</summary>
    public static void Save(string dir, VqTokenizer model, AdamW? optimizer = null, TokenizerTrainingState? state = null)
    {
        CheckpointFolder.Write(dir, tmp =>
        {
            AtomicFile.WriteAllText(Path.Combine(tmp, ConfigFile), model.Config.ToJson());
            var meta = new Dictionary<string, string> { ["format"] = Format, ["step"] = (state?.Step ?? 0).ToString() };
            Safetensors.Save(Path.Combine(tmp, WeightsFile), model.state_dict(), meta);
            if (optimizer is not null) SaveOptimizer(Path.Combine(tmp, OptimizerFile), model, optimizer);
            if (state is not null) AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), JsonSerializer.Serialize(state, StateJson));
        });
    }

    /// <summary>The checkpoint folder (recovering an interrupted swap), or a <see cref="FileNotFoundException"/> that says how to make one.</summary>
    public static string Resolve(string dir)
    {
        var full = CheckpointFolder.Resolve(dir);
        if (full is null || !File.Exists(Path.Combine(full, ConfigFile)))
            throw new FileNotFoundException($"'{dir}' is not a tokenizer checkpoint (no {ConfigFile}); train one with 'snce tokenizer train --out {dir}'", Path.Combine(dir, ConfigFile));
        return full;
    }

    /// <summary>
    /// The tokenizer's identity: the SHA-256 (lowercase hex) of its model.safetensors. Shards and runs record it, so that
    /// a tokenizer folder replaced by another (even one with the same K) is detected when decoding or resuming.
    /// </summary>
    public static string Identity(string dir)
    {
        var path = Path.Combine(Resolve(dir), WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{dir}' has no {WeightsFile}; the tokenizer checkpoint is incomplete", path);
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs));
    }

    /// <summary><see cref="Identity"/>, or null when <paramref name="dir"/> holds no saved tokenizer (a model tokenized from memory).</summary>
    public static string? TryIdentity(string dir)
    {
        var full = CheckpointFolder.Resolve(dir);
        return full is not null && File.Exists(Path.Combine(full, ConfigFile)) && File.Exists(Path.Combine(full, WeightsFile)) ? Identity(full) : null;
    }

    /// <summary>
    /// Throws when the tokenizer in <paramref name="dir"/> is not the one identified by <paramref name="expectedSha256"/>
    /// (null: nothing recorded, nothing to check). <paramref name="recordedBy"/> names who recorded it, for the message.
    /// </summary>
    public static void CheckIdentity(string dir, string? expectedSha256, string recordedBy)
    {
        if (expectedSha256 is null) return;
        var actual = Identity(dir);
        if (actual != expectedSha256)
            throw new InvalidDataException(
                $"the tokenizer in '{dir}' (weights sha256 {actual[..12]}) is not the one {recordedBy} was made with ({expectedSha256[..Math.Min(12, expectedSha256.Length)]}); " +
                "its codes mean other images. Pass the original tokenizer with --tokenizer, or retrain/retokenize with this one");
    }

    /// <summary>Reads config.json.</summary>
    public static TokenizerConfig LoadConfig(string dir)
    {
        var full = Resolve(dir);
        var path = Path.Combine(full, ConfigFile);
        return TokenizerConfig.FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Rebuilds the model from the folder alone and moves it to <paramref name="device"/> (eval mode).</summary>
    public static VqTokenizer Load(string dir, Device? device = null)
    {
        var full = Resolve(dir);
        var model = new VqTokenizer(LoadConfig(full));
        try
        {
            LoadWeights(Path.Combine(full, WeightsFile), model);
            model.to(device ?? CPU);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Reads training.json, or null for an inference-only checkpoint.</summary>
    public static TokenizerTrainingState? LoadState(string dir)
    {
        var path = Path.Combine(Resolve(dir), StateFile);
        if (!File.Exists(path)) return null;
        TokenizerTrainingState? state;
        try { state = JsonSerializer.Deserialize<TokenizerTrainingState>(File.ReadAllText(path), StateJson); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is damaged ({e.Message})"); }
        if (state is null || state.Options is null || state.Data is null)
            throw new InvalidDataException($"{path} is damaged (step, options and data must all be given)");
        if (state.Step < 0 || !(state.TrainSeconds >= 0) || double.IsInfinity(state.TrainSeconds))
            throw new InvalidDataException($"{path}: the state (step {state.Step}, {state.TrainSeconds} s trained) has a negative or non-finite value; the file is damaged or was edited");
        try { state.Options.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: the saved training options are invalid ({e.Message}); the file is damaged or was edited"); }
        return state;
    }

    static void LoadWeights(string path, VqTokenizer model)
    {
        var (tensors, meta) = Safetensors.Load(path);
        try
        {
            if (meta.GetValueOrDefault("format") != Format)
                throw new InvalidDataException($"{path}: format '{meta.GetValueOrDefault("format")}' is not '{Format}'");
            var expected = model.state_dict();
            // The codebook first, so that a K or D mismatch is reported as such (EMA statistics share its shape).
            foreach (var (name, t) in expected.OrderBy(kv => kv.Key.EndsWith(".codebook", StringComparison.Ordinal) ? 0 : 1))
            {
                if (!tensors.TryGetValue(name, out var stored))
                    throw new InvalidDataException($"{path} lacks '{name}'; it does not match {ConfigFile}");
                if (stored.is_floating_point() && !stored.isfinite().all().item<bool>())
                    throw new InvalidDataException($"{path}: '{name}' has NaN or infinite values; the tokenizer diverged or the file is damaged (re-train it, or resume from an earlier checkpoint)");
                if (!stored.shape.SequenceEqual(t.shape))
                    throw new InvalidDataException(
                        $"{path}: '{name}' has shape [{string.Join(", ", stored.shape)}] but {ConfigFile} implies [{string.Join(", ", t.shape)}]" +
                        (name.EndsWith(".codebook", StringComparison.Ordinal)
                            ? $" (codebook size K = {stored.shape[0]} and code dimension D = {stored.shape[1]} in the weights, K = {model.Config.CodebookSize} and D = {model.Config.CodeDim} in the config)"
                            : ""));
            }
            var extra = tensors.Keys.Except(expected.Keys).ToList();
            if (extra.Count > 0) throw new InvalidDataException($"{path} has tensors the model does not know: {string.Join(", ", extra.Take(5))}");
            using (no_grad())
                foreach (var (name, t) in expected) t.copy_(tensors[name]);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>AdamW state per parameter, keyed by the parameter's state-dict name: NAME.exp_avg, NAME.exp_avg_sq, NAME.step (int64 scalar).</summary>
    static void SaveOptimizer(string path, VqTokenizer model, AdamW optimizer)
    {
        using var scope = NewDisposeScope();
        var names = model.named_parameters().Select(p => p.name).ToList();
        var states = optimizer.state_dict().State;
        if (states.Count != names.Count)
            throw new InvalidOperationException($"optimizer has {states.Count} parameter states, the model {names.Count} parameters");
        var tensors = new Dictionary<string, Tensor>();
        for (var i = 0; i < names.Count; i++)
        {
            var s = (AdamW.State)states[i];
            tensors[names[i] + ".exp_avg"] = s.exp_avg;
            tensors[names[i] + ".exp_avg_sq"] = s.exp_avg_sq;
            tensors[names[i] + ".step"] = tensor(s.step);
        }
        Safetensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = Format + "/adamw" });
    }

    /// <summary>Restores AdamW moments and steps saved by <see cref="Save"/> into <paramref name="optimizer"/> (built over <paramref name="model"/>'s parameters, on its device).</summary>
    public static void LoadOptimizer(string dir, VqTokenizer model, AdamW optimizer)
    {
        var path = Path.Combine(Resolve(dir), OptimizerFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: this checkpoint cannot resume training (it has no optimizer state)", path);
        var (tensors, _) = Safetensors.Load(path);
        try
        {
            var names = model.named_parameters().Select(p => p.name).ToList();
            var states = optimizer.state_dict().State;
            using var _ = no_grad();
            for (var i = 0; i < names.Count; i++)
            {
                var s = (AdamW.State)states[i];
                Tensor Get(string suffix) => tensors.TryGetValue(names[i] + suffix, out var t) ? t
                    : throw new InvalidDataException($"{path} lacks '{names[i] + suffix}'; it does not match the model");
                s.exp_avg.copy_(Get(".exp_avg"));
                s.exp_avg_sq.copy_(Get(".exp_avg_sq"));
                s.step = Get(".step").item<long>();
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
