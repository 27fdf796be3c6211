using System.Globalization;
using System.Text.Json;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// Appends metric records to <c>metrics.jsonl</c> (one JSON object per line) and mirrors the numbers to
/// TensorBoard event files under <c>tb/</c> (tag = split/name). Only rank 0 writes.
/// </summary>
public sealed class MetricsLog
{
    readonly string jsonlPath;
    readonly SummaryWriter? board;

    /// <summary>Logs into <paramref name="run"/>; <paramref name="tensorBoard"/> off skips the event files.</summary>
    public MetricsLog(RunFolder run, bool tensorBoard = true)
    {
        Directory.CreateDirectory(run.Root);
        jsonlPath = run.Metrics;
        board = tensorBoard ? utils.tensorboard.SummaryWriter(run.TensorBoard) : null;
    }

    /// <summary>The JSONL file.</summary>
    public string JsonlPath => jsonlPath;

    /// <summary>Writes one record: the step, the split (train/val) and named numbers.</summary>
    public void Write(long step, string split, IReadOnlyDictionary<string, double> values)
    {
        var record = new Dictionary<string, object> { ["step"] = step, ["split"] = split };
        foreach (var (k, v) in values) record[k] = double.IsFinite(v) ? Math.Round(v, 6) : v.ToString(CultureInfo.InvariantCulture);
        File.AppendAllText(jsonlPath, JsonSerializer.Serialize(record) + "\n");
        if (board is null) return;
        foreach (var (k, v) in values)
            if (double.IsFinite(v)) board.add_scalar($"{split}/{k}", (float)v, (int)step);
    }
}
