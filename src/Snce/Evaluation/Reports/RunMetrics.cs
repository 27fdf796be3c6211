using System.Text.Json;
using System.Text.Json.Nodes;
using Snce.Losses;
using Snce.Training;

namespace Snce.Evaluation.Reports;

/// <summary>What a run was: the grouping keys of a report.</summary>
/// <param name="Dir">the run folder.</param>
/// <param name="Name">the folder's name.</param>
/// <param name="Loss">ce, snce, label-smoothing, stochastic, ...</param>
/// <param name="Objective">ar / masked (the generator kind), or null when not recorded.</param>
/// <param name="CodebookSize">K, or null when not recorded.</param>
/// <param name="Seed">the training seed, or null.</param>
/// <param name="Kind">the loss the run trained, typed (the label <paramref name="Loss"/> may be a study's <c>snce-p4</c> or a
/// user's own name): from the trainer's manifest, else the flat config's <c>loss_name</c> or <c>loss</c>; null when none names a known loss.</param>
public sealed record RunInfo(string Dir, string Name, string Loss, string? Objective, int? CodebookSize, long? Seed, LossKind? Kind = null)
{
    /// <summary>Whether the run is a cross-entropy baseline, whatever its label.</summary>
    public bool IsCrossEntropy => Kind == LossKind.CrossEntropy;
}

/// <summary>One value at one training step.</summary>
public readonly record struct MetricPoint(long Step, double Value);

/// <summary>
/// A final evaluation of a run at a larger sample count than its curves (<c>final-last.json</c> / <c>final-best.json</c>,
/// as <c>snce study --final-eval-images</c> writes them with <c>snce eval --json</c>); memorization fields are null when not measured.
/// </summary>
/// <param name="Which">last or best (the checkpoint kept by --keep-best).</param>
/// <param name="Step">the checkpoint's training step.</param>
/// <param name="N">generated images scored.</param>
/// <param name="Fd">FD-ResNet18 against the validation split.</param>
/// <param name="FdTrain">FD-ResNet18 against the training split.</param>
/// <param name="Precision">k-NN precision (realism).</param>
/// <param name="Recall">k-NN recall (coverage).</param>
/// <param name="ClassAccuracy">how often the classifier reads the conditioning class.</param>
/// <param name="NnRatio">nearest-training-neighbour distance, generated over validation.</param>
/// <param name="CopyFraction">generated token sequences identical to a training sequence.</param>
public sealed record FinalEvaluation(string Which, long? Step, int? N, double? Fd, double? FdTrain, double? Precision, double? Recall,
    double? ClassAccuracy, double? NnRatio, double? CopyFraction);

/// <summary>
/// A run's curves, each sorted by step (a later record at the same step replaces an earlier one). Memorization curves:
/// <see cref="FdTrain"/> (FD against the training split), <see cref="NnRatio"/> (mean nearest-training-neighbour distance
/// of generated images over that of validation images, in ResNet-18 features: below 1, samples sit closer to training
/// images than unseen real images do) and <see cref="CopyFraction"/> (generated token sequences identical to a training one).
/// </summary>
public sealed record RunMetrics(RunInfo Info, IReadOnlyList<MetricPoint> Fd, IReadOnlyList<MetricPoint> ValCe, IReadOnlyList<MetricPoint> TrainLoss,
    IReadOnlyList<MetricPoint> Precision, IReadOnlyList<MetricPoint> Recall, IReadOnlyList<MetricPoint> ClassAccuracy)
{
    /// <summary>FD-ResNet18 of the samples against the training split, per evaluation step.</summary>
    public IReadOnlyList<MetricPoint> FdTrain { get; init; } = [];
    /// <summary>Nearest-training-neighbour distance ratio, generated over validation (below 1: closer to training images).</summary>
    public IReadOnlyList<MetricPoint> NnRatio { get; init; } = [];
    /// <summary>Share in [0, 1] of generated token sequences identical to a training sequence.</summary>
    public IReadOnlyList<MetricPoint> CopyFraction { get; init; } = [];
    /// <summary>Text-to-image runs (<c>snce eval --prompts ... --log-to</c>): R@1 of each prompt's own caption among the candidates, per evaluation step.</summary>
    public IReadOnlyList<MetricPoint> TextR1 { get; init; } = [];
    /// <summary>R@5 of the same evaluations.</summary>
    public IReadOnlyList<MetricPoint> TextR5 { get; init; } = [];
    /// <summary>Mean matched cosine of the same evaluations (the CLIP-score analogue).</summary>
    public IReadOnlyList<MetricPoint> TextCosine { get; init; } = [];
    /// <summary>R@1 of the real images of the same prompts: the evaluator's ceiling.</summary>
    public IReadOnlyList<MetricPoint> TextR1Real { get; init; } = [];
    /// <summary>The run's final evaluations (last, then best), where it has them.</summary>
    public IReadOnlyList<FinalEvaluation> Finals { get; init; } = [];

    /// <summary>The final evaluation of the <paramref name="which"/> checkpoint ("last" or "best"), or null when the run has none.</summary>
    public FinalEvaluation? Final(string which) => Finals.FirstOrDefault(f => f.Which == which);
    /// <summary>The FD of the last evaluation, or null when none was logged.</summary>
    public double? FinalFd => Fd.Count > 0 ? Fd[^1].Value : null;
    /// <summary>The lowest FD of the curve and its step.</summary>
    public MetricPoint? BestFd => Fd.Count > 0 ? Fd.MinBy(p => p.Value) : null;
    /// <summary>The validation cross-entropy (nats per token) of the last validation, or null when none was logged.</summary>
    public double? FinalValCe => ValCe.Count > 0 ? ValCe[^1].Value : null;
    /// <summary>The latest step any FD, validation or training-loss record names, or null for an empty log.</summary>
    public long? LastStep => new[] { Fd, ValCe, TrainLoss }.Where(s => s.Count > 0).Select(s => (long?)s[^1].Step).Max();
}

/// <summary>
/// Reads a run folder: <c>metrics.jsonl</c> (one JSON object per line with <c>step</c>; FD from <c>fd</c>;
/// validation CE from <c>val_ce</c>, or from <c>hard_ce</c> on records with <c>"split": "val"</c> as Snce's trainer
/// writes them; training loss from <c>loss</c> on train records; <c>precision</c>, <c>recall</c>, <c>class_accuracy</c>
/// from <c>snce eval --log-to</c> records; memorization from <c>fd_train</c>, <c>nn_ratio</c>, <c>copy_fraction</c>; text alignment
/// from <c>text_r1</c>, <c>text_r5</c>, <c>text_cosine</c>, <c>text_r1_real</c> (<c>snce eval --prompts --log-to</c>);
/// final evaluations from <c>final-last.json</c> and <c>final-best.json</c> next to the log) and the run's configuration: <c>config.json</c> (flat: <c>loss</c>,
/// <c>codebook_size</c>, <c>objective</c>, <c>seed</c>) or else the trainer's <c>checkpoint/checkpoint.json</c>
/// (<c>loss.kind</c>, or <c>loss.name</c> in snce-generator/1, <c>model.codebook_size</c>, <c>model.kind</c>, <c>training.seed</c>).
/// The loss's typed kind (<see cref="RunInfo.Kind"/>) comes from the manifest where there is one, else from the flat config.
/// </summary>
public static class RunReader
{
    /// <summary>The curves, configuration and final evaluations of the run folder <paramref name="dir"/>; throws when it or its metrics.jsonl is missing.</summary>
    public static RunMetrics Read(string dir)

    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"no run folder {dir}");
        var metricsPath = new RunFolder(dir).Metrics;
        if (!File.Exists(metricsPath)) throw new FileNotFoundException($"run {dir} has no {RunFolder.MetricsFileName}", metricsPath);
        var info = ReadInfo(dir);
        var series = new Dictionary<string, SortedDictionary<long, double>>();
        void Add(string name, long step, double? value)
        {
            if (value is not { } v || !double.IsFinite(v)) return;
            if (!series.TryGetValue(name, out var s)) series[name] = s = [];
            s[step] = v;
        }
        var lineNo = 0;
        foreach (var line in File.ReadLines(metricsPath))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject record;
            try { record = JsonNode.Parse(line)?.AsObject() ?? throw new InvalidDataException("null"); }
            catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
            {
                throw new InvalidDataException($"{metricsPath}:{lineNo}: not a JSON object ({e.Message})");
            }
            var step = Number(record, "step") ?? throw new InvalidDataException($"{metricsPath}:{lineNo}: record has no numeric 'step'");
            var split = record["split"]?.GetValueKind() == JsonValueKind.String ? record["split"]!.GetValue<string>() : null;
            Add("fd", (long)step, Number(record, "fd"));
            Add("val_ce", (long)step, Number(record, "val_ce") ?? (split == "val" ? Number(record, "hard_ce") : null));
            if (split is null or "train") Add("loss", (long)step, Number(record, "loss"));
            Add("precision", (long)step, Number(record, "precision"));
            Add("recall", (long)step, Number(record, "recall"));
            Add("class_accuracy", (long)step, Number(record, "class_accuracy"));
            Add("fd_train", (long)step, Number(record, "fd_train"));
            Add("nn_ratio", (long)step, Number(record, "nn_ratio"));
            Add("copy_fraction", (long)step, Number(record, "copy_fraction"));
            foreach (var key in TextKeys) Add(key, (long)step, Number(record, key));
        }
        IReadOnlyList<MetricPoint> Points(string name) =>
            series.TryGetValue(name, out var s) ? s.Select(kv => new MetricPoint(kv.Key, kv.Value)).ToList() : [];
        return new RunMetrics(info, Points("fd"), Points("val_ce"), Points("loss"), Points("precision"), Points("recall"), Points("class_accuracy"))
        {
            FdTrain = Points("fd_train"), NnRatio = Points("nn_ratio"), CopyFraction = Points("copy_fraction"),
            TextR1 = Points("text_r1"), TextR5 = Points("text_r5"), TextCosine = Points("text_cosine"), TextR1Real = Points("text_r1_real"),
            Finals = new[] { "last", "best" }.Select(w => ReadFinal(dir, w)).OfType<FinalEvaluation>().ToList(),
        };
    }

    static readonly string[] TextKeys = ["text_r1", "text_r5", "text_cosine", "text_r1_real"];

    static FinalEvaluation? ReadFinal(string dir, string which)
    {
        var path = new RunFolder(dir).FinalEvaluation(which);
        if (!File.Exists(path)) return null;
        var o = Parse(path);
        return new FinalEvaluation(which, (long?)Number(o, "step"), (int?)Number(o, "n"), Number(o, "fd"), Number(o, "fd_train"), Number(o, "precision"),
            Number(o, "recall"), Number(o, "class_accuracy"), Number(o, "nn_ratio"), Number(o, "copy_fraction"));
    }

    static RunInfo ReadInfo(string dir)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
        var folder = new RunFolder(dir);
        var flat = folder.Config;
        var m = File.Exists(folder.Manifest) ? Parse(folder.Manifest) : null;
        var manifestLoss = (m?["loss"] as JsonObject) is { } l ? Text(l, "kind") ?? Text(l, "name") : null;      // snce-generator/2: kind; /1: name
        if (File.Exists(flat))
        {
            var c = Parse(flat);
            var loss = c["loss"] switch
            {
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonObject o => Text(o, "name"),
                _ => null,
            } ?? throw new InvalidDataException($"{flat} has no 'loss' (a name, or an object with 'name')");
            // The label groups runs; the kind says what was trained: the trainer's own record first, then the study's loss_name.
            var kind = KindOf(manifestLoss) ?? KindOf(Text(c, "loss_name")) ?? KindOf(loss);
            return new RunInfo(dir, name, loss, Text(c, "objective") ?? Text(c, "kind"), (int?)Number(c, "codebook_size"), (long?)Number(c, "seed"), kind);
        }
        if (m is not null)
        {
            var model = m["model"] as JsonObject;
            var training = m["training"] as JsonObject;
            return new RunInfo(dir, name, manifestLoss ?? throw new InvalidDataException($"{folder.Manifest} has no loss.kind"),
                model is null ? null : Text(model, "kind"), model is null ? null : (int?)Number(model, "codebook_size"),
                training is null ? null : (long?)Number(training, "seed"), KindOf(manifestLoss));
        }
        throw new FileNotFoundException($"run {dir} has neither {RunFolder.ConfigFileName} nor {Path.GetRelativePath(dir, folder.Manifest)}: the report needs the run's loss (and codebook size, seed)");
    }

    static LossKind? KindOf(string? name) => EnumNames<LossKind>.TryParse(name);

    static JsonObject Parse(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path} is empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path} is not a JSON object ({e.Message})");
        }
    }

    static double? Number(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : null;

    static string? Text(JsonObject o, string key) => o[key] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>().ToLowerInvariant(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
        _ => null,
    };
}
