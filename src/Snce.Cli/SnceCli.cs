using System.CommandLine;
using Snce.Cli.Commands;
using Snce.Native;

namespace Snce.Cli;

/// <summary>The <c>snce</c> command line: builds the verb tree, runs it, turns failures into one-line errors.</summary>
/// <remarks>
/// System.CommandLine (not Spectre.Console.Cli): it generates --help from the same option objects the
/// verbs read, so help cannot drift from behaviour; it is Microsoft's maintained parser with POSIX
/// syntax and typed options. The progress bar (ProgressBar.cs) is a few lines of plain console output.
/// </remarks>
public static class SnceCli
{
    /// <summary>Exit code for a failure while running (bad data, missing files, native setup).</summary>
    public const int RuntimeError = 1;
    /// <summary>Exit code for a malformed command line.</summary>
    public const int UsageError = 2;

    public static RootCommand Build()
    {
        var root = new RootCommand(
            "Snce: train, sample and evaluate discrete image generators with SNCE (Stochastic Neighbor Cross Entropy).");
        foreach (var verb in Verbs()) root.Subcommands.Add(verb);
        return root;
    }

    /// <summary>Every verb, in help order. Each lives in its own file under Commands/.</summary>
    static IEnumerable<Command> Verbs() =>
    [
        InfoCommand.Create(),
        DataCommand.Create(),
        LossCommand.Create(),
        TokenizerCommand.Create(),
        TokenizeCommand.Create(),
        TrainCommand.Create(),
        SampleCommand.Create(),
        EditCommand.Create(),
        ClassifierCommand.Create(),
        EvaluatorCommand.Create(),
        EvalCommand.Create(),
        ReportCommand.Create(),
        StudyCommand.Create(),
    ];

    public static int Run(string[] args)
    {
        var root = Build();
        if (args.Length == 0) args = ["--help"];
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var verb = VerbPath(parse.CommandResult);
            var reasons = string.Join("; ", parse.Errors.Select(e => e.Message.TrimEnd('.')).Distinct());
            Console.Error.WriteLine($"snce: error: {reasons} (see 'snce{verb} --help')");
            return UsageError;
        }
        try
        {
            // Signals are the verbs' own (StopSignals: SIGINT, SIGTERM and SIGHUP finish the step and save).
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (Exception e) when (IsUserFacing(e))
        {
            Console.Error.WriteLine($"snce: error: {e.Message}");
            return RuntimeError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("snce: stopped.");
            return 130;
        }
    }

    /// <summary>" tokenizer eval" for <c>snce tokenizer eval</c>: the whole verb path, so the hint names the right --help.</summary>
    static string VerbPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (var r = result; r is not null && r.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(r.Command.Name);
        names.Reverse();
        return string.Concat(names.Select(n => " " + n));
    }

    /// <summary>Errors whose message already names the problem and the fix: no stack trace for these.</summary>
    static bool IsUserFacing(Exception e) => e is SnceSetupException or Snce.Distributed.DistributedSetupException or ArgumentException or IOException
        or InvalidDataException or UnauthorizedAccessException or FormatException or NotSupportedException
        or SnceUserException;
}
