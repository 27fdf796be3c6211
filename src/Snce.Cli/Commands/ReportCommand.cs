using System.CommandLine;
using Snce.Evaluation.Reports;

namespace Snce.Cli.Commands;

/// <summary><c>snce report RUNS... --out DIR</c>: plots and a markdown table over training runs.</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var runs = new Argument<string[]>("RUNS") { Description = "Run folders (each with metrics.jsonl and config.json or checkpoint/checkpoint.json).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "Folder for report.md and the PNG plots.", HelpName = "DIR", Required = true };
        var cmd = new Command("report", "Plot FD-ResNet18 and validation CE against steps (one line per loss, mean ± std over seeds), final FD against codebook size, and write a markdown table.");
        cmd.Arguments.Add(runs);
        cmd.Options.Add(output);
        cmd.SetAction(parse =>
        {
            var files = RunReport.Write(parse.GetValue(runs)!, parse.GetValue(output)!);
            Console.WriteLine($"wrote {files.Markdown}");
            foreach (var p in files.Plots) Console.WriteLine($"wrote {p}");
            return 0;
        });
        return cmd;
    }
}
