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

    /// <summary>The variables that size libtorch's CPU thread pools.</summary>
    public static readonly string[] ThreadVariables = ["OMP_NUM_THREADS", "MKL_NUM_THREADS"];

    /// <summary>
    /// CPU threads for each of <paramref name="parallel"/> concurrent jobs on <paramref name="cores"/> cores: an even share
    /// (at least 1), or null for one job (it keeps libtorch's default). Without it every child sizes its pools to every core, so
    /// N jobs side by side run N threads per core in their CPU work (an evaluation's covariances and eigendecompositions).
    /// </summary>
    public static int? ThreadShare(int parallel, int cores) => parallel <= 1 ? null : Math.Max(1, cores / parallel);

    /// <summary>True for the verbs that save a checkpoint when asked to stop (train, tokenizer train): the study lets them finish their step.</summary>
    public static bool SavesOnStop(IReadOnlyList<string> args) =>
        args.Count > 0 && (args[0] == "train" || (args.Count > 1 && args[0] == "tokenizer" && args[1] == "train"));

    /// <summary>
    /// Runs <c>snce ARGS</c>, appending stdout and stderr to <paramref name="log"/>; returns the exit code and stdout.
    /// When <paramref name="cancel"/> fires, a verb that <see cref="SavesOnStop"/> is asked to stop through its standard
    /// input (<see cref="StopSignals.ParentPipeVariable"/>: the line <paramref name="stopReason"/> gives, e.g. SIGTERM) and
    /// awaited, so it finishes its step and saves its checkpoint; any other verb is killed (it has nothing to save and is
    /// re-run). Then <see cref="OperationCanceledException"/> is thrown. If this process dies first, the job reads the
    /// end of its input and stops the same way.
    /// </summary>
    /// <param name="cpuThreads">when set, the child's OpenMP/MKL thread pools get this many threads (OMP_NUM_THREADS,
    /// MKL_NUM_THREADS), unless this process's environment already sets them.</param>
    public static async Task<(int ExitCode, string Stdout)> RunAsync(IReadOnlyList<string> args, string log, CancellationToken cancel, Func<string>? stopReason = null,
        int? cpuThreads = null)
    {
        var (file, prefix) = Command();
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.Environment[StopSignals.ParentPipeVariable] = "1";
        if (cpuThreads is { } n)
            foreach (var name in ThreadVariables)
                if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name))) psi.Environment[name] = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
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
            if (SavesOnStop(args) && !p.HasExited)
            {
                try
                {
                    await p.StandardInput.WriteLineAsync(stopReason?.Invoke() ?? "SIGTERM");
                    p.StandardInput.Close();
                }
                catch (IOException) { }                                        // it ended meanwhile
                await p.WaitForExitAsync(CancellationToken.None);             // its step, then its checkpoint
                p.WaitForExit();
                lock (gate) writer.WriteLine($"# exit {p.ExitCode} (asked to stop)");
            }
            else
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw;
        }
        p.WaitForExit(); // drain the output events
        lock (gate) writer.WriteLine($"# exit {p.ExitCode}");
        return (p.ExitCode, stdout.ToString());
    }

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=,".Contains(c)) ? a : $"'{a}'";
}
