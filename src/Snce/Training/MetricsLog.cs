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

    /// <summary>
    /// A new run in a folder that holds logs but no checkpoint (a run killed before its first save): moves
    /// metrics.jsonl and tb/ aside to metrics.jsonl.stale and tb.stale (replacing older ones), so the new run starts
    /// clean. Returns the number of records set aside, or null when there was no log.
    /// </summary>
    public static long? SetAsideStale(string runDir)
    {
        var run = new RunFolder(runDir);
        var (file, board) = (run.Metrics, run.TensorBoard);
        if (!File.Exists(file) && !Directory.Exists(board)) return null;
        long records = 0;
        if (File.Exists(file))
        {
            records = File.ReadLines(file).LongCount(l => l.Length > 0);
            File.Move(file, file + ".stale", overwrite: true);
        }
        if (Directory.Exists(board))
        {
            if (Directory.Exists(board + ".stale")) Directory.Delete(board + ".stale", recursive: true);
            Directory.Move(board, board + ".stale");
        }
        return records;
    }

    /// <summary>
    /// A resumed run repeats the steps after its checkpoint: drops the records logged after <paramref name="step"/>
    /// (by a run killed between checkpoints) so that no step appears twice. Returns the number dropped. Lines that
    /// are not records (a line cut short by the kill) are dropped too.
    /// </summary>
    public static int DropAfter(string runDir, long step)
    {
        var file = new RunFolder(runDir).Metrics;
        if (!File.Exists(file)) return 0;
        var kept = new List<string>();
        var dropped = 0;
        foreach (var line in File.ReadLines(file))
        {
            if (line.Length == 0) continue;
            if (RecordStep(line) is { } s && s <= step) kept.Add(line);
            else dropped++;
        }
        if (dropped > 0) AtomicFile.WriteAllText(file, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
        return dropped;
    }

    static long? RecordStep(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out var v) ? v : null;
        }
        catch (JsonException) { return null; }
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
