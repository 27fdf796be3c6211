using System.Text;
using System.Text.Json;

namespace Snce.Bench;

/// <summary>
/// A benchmark's results: rows of named columns, saved as JSON (for machines) and a markdown table
/// (for docs), with the machine and command that produced them.
/// </summary>
public sealed class BenchReport(string name, string command)
{
    public string Name { get; } = name;
    public string Command { get; } = command;
    public string Machine { get; set; } = $"{Environment.MachineName}, {Environment.ProcessorCount} CPU threads";
    public DateTime WhenUtc { get; } = DateTime.UtcNow;
    public List<string> Notes { get; } = [];
    public List<Dictionary<string, object?>> Rows { get; } = [];

    public void Add(Dictionary<string, object?> row)
    {
        Rows.Add(row);
        Console.WriteLine(string.Join("  ", row.Select(kv => $"{kv.Key}={Format(kv.Value)}")));
    }

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var json = JsonSerializer.Serialize(new { name = Name, command = Command, machine = Machine, when_utc = WhenUtc, notes = Notes, rows = Rows },
            new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllText(Path.Combine(dir, $"{Name}.json"), json);
        AtomicFile.WriteAllText(Path.Combine(dir, $"{Name}.md"), Markdown());
    }

    public string Markdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Command: `{Command}`  ").AppendLine($"Machine: {Machine}  ").AppendLine($"Run: {WhenUtc:yyyy-MM-dd HH:mm} UTC").AppendLine();
        foreach (var n in Notes) sb.AppendLine($"- {n}");
        if (Notes.Count > 0) sb.AppendLine();
        var cols = Rows.SelectMany(r => r.Keys).Distinct().ToList();
        sb.AppendLine("| " + string.Join(" | ", cols) + " |");
        sb.AppendLine("|" + string.Concat(cols.Select(_ => "---|")));
        foreach (var r in Rows)
            sb.AppendLine("| " + string.Join(" | ", cols.Select(c => r.TryGetValue(c, out var v) ? Format(v) : "")) + " |");
        return sb.ToString();
    }

    static string Format(object? v) => v switch
    {
        null => "—",
        double d => Math.Abs(d) >= 100 ? d.ToString("F1") : Math.Abs(d) >= 1 ? d.ToString("F2") : d.ToString("G3"),
        float f => Format((double)f),
        _ => v.ToString() ?? "",
    };
}
