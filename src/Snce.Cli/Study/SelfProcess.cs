using System.Diagnostics;
using System.Reflection;

namespace Snce.Cli.Study;

/// <summary>
/// Runs another <c>snce</c> verb as a child process of this same installation (apphost or <c>dotnet snce.dll</c>),
/// output appended to a log file. Each child loads its own libtorch, so jobs are isolated and can share a GPU.
/// </summary>
public static class SelfProcess
{
    /// <summary>The command that starts this program: the apphost, or dotnet plus the entry assembly.</summary>
    public static (string File, string[] Prefix) Command()
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell how this program was started");
        var entry = Assembly.GetEntryAssembly()?.Location;
        return Path.GetFileNameWithoutExtension(path) == "dotnet" && entry is { Length: > 0 } ? (path, [entry]) : (path, []);
    }

    /// <summary>Runs <c>snce ARGS</c>, appending stdout and stderr to <paramref name="log"/>; returns the exit code and stdout.</summary>
    public static async Task<(int ExitCode, string Stdout)> RunAsync(IReadOnlyList<string> args, string log, CancellationToken cancel)
    {
        var (file, prefix) = Command();
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(args)) psi.ArgumentList.Add(a);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(log))!);
        await using var writer = new StreamWriter(log, append: true) { AutoFlush = true };
        await writer.WriteLineAsync($"$ snce {string.Join(' ', args.Select(Quote))}   # {DateTime.UtcNow:HH:mm:ss} UTC");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = new System.Text.StringBuilder();
        var gate = new object();
        p.OutputDataReceived += (_, e) => { if (e.Data is null) return; lock (gate) { stdout.AppendLine(e.Data); writer.WriteLine(e.Data); } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is null) return; lock (gate) writer.WriteLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            await p.WaitForExitAsync(cancel);
        }
        catch (OperationCanceledException)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw;
        }
        p.WaitForExit(); // drain the output events
        lock (gate) writer.WriteLine($"# exit {p.ExitCode}");
        return (p.ExitCode, stdout.ToString());
    }

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=,".Contains(c)) ? a : $"'{a}'";
}
