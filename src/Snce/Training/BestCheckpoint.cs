using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Snce.Training;

/// <summary>Which evaluation decides the best checkpoint of a run; lower is better for both.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<BestRule>)), Description("--keep-best rule")]
public enum BestRule
{
    /// <summary>Hard cross-entropy of the true tokens on the validation split (the trainer's logged value at the checkpoint's step).</summary>
    [JsonStringEnumMemberName("val-ce")] ValCe,
    /// <summary>FD-ResNet18 of the samples against the validation split (from <c>snce eval</c> at the checkpoint's step).</summary>
    [JsonStringEnumMemberName("fd")] Fd,
}

/// <summary>best/best.json: which rule chose the copy, at which step, with which value.</summary>
public sealed record BestRecord(
    [property: JsonPropertyName("rule")] string Rule,
    [property: JsonPropertyName("step")] long Step,
    [property: JsonPropertyName("value")] double Value);

/// <summary>
/// The best checkpoint of a run by a declared <see cref="BestRule"/>, kept next to the last one: RUN/best/ is a copy of
/// RUN/checkpoint/ taken at the evaluation point where the rule's value was lowest so far, plus best.json. Offered at
/// each evaluation point; the copy is atomic (<see cref="CheckpointFolder"/>), so a crash leaves the old best or the new.
/// </summary>
public static class BestCheckpoint
{
    /// <summary>The record file inside the best folder.</summary>
    public const string RecordFile = "best.json";

    /// <summary>The best-checkpoint folder of a run folder.</summary>
    public static string FolderOf(string runDir) => new RunFolder(runDir).Best;

    /// <summary>The run's best record, or null when none was kept yet.</summary>
    public static BestRecord? Read(string runDir)
    {
        var dir = CheckpointFolder.Resolve(FolderOf(runDir));
        var file = dir is null ? null : Path.Combine(dir, RecordFile);
        if (file is null || !File.Exists(file)) return null;
        try { return JsonSerializer.Deserialize<BestRecord>(File.ReadAllText(file)); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not a best-checkpoint record ({e.Message})"); }
    }

    /// <summary>
    /// Offers the run's current checkpoint (which must be at <paramref name="step"/>) with its <paramref name="value"/> under
    /// <paramref name="rule"/>; copies it to RUN/best when it is strictly better than the kept one (or none is kept).
    /// Returns the record now in force. Throws when the run's best was kept under another rule.
    /// </summary>
    public static BestRecord Offer(string runDir, BestRule rule, long step, double value)
    {
        if (!double.IsFinite(value)) throw new ArgumentException($"--keep-best {rule.Name()}: the value at step {step} is {value}, not a finite number");
        var kept = Read(runDir);
        if (kept is not null && kept.Rule != rule.Name())
            throw new ArgumentException($"{FolderOf(runDir)} was kept by --keep-best {kept.Rule}; a run keeps one rule (got {rule.Name()})");
        var source = GeneratorCheckpoint.Resolve(runDir);
        var at = GeneratorCheckpoint.ReadManifest(source).State.Step;
        if (at != step) throw new InvalidOperationException($"{source} is at step {at}, not the evaluated step {step}");
        if (kept is not null && !(value < kept.Value)) return kept;
        var record = new BestRecord(rule.Name(), step, value);
        CheckpointFolder.Write(FolderOf(runDir), dir =>
        {
            foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
            File.WriteAllText(Path.Combine(dir, RecordFile), JsonSerializer.Serialize(record));
        });
        return record;
    }
}
