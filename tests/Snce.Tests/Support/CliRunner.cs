using System.Diagnostics;

namespace Snce.Tests.Support;

/// <summary>Runs the <c>snce</c> command line in-process (fast) or as a fresh process (for native loading).</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    static readonly object ConsoleGate = new();

    public static Result Run(params string[] args)
    {
        lock (ConsoleGate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (o, e) = (new StringWriter(), new StringWriter());
            Console.SetOut(o);
            Console.SetError(e);
            try
            {
                var code = Snce.Cli.SnceCli.Run(args);
                return new Result(code, o.ToString(), e.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }

    /// <summary>Runs <c>dotnet snce.dll</c> from the test output folder in a new process with extra environment variables.</summary>
    public static Result RunProcess(IDictionary<string, string>? env, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "snce.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // A guard against hangs, not a speed check: the tiny study alone takes ~2 min 50 s on CI's 2 cores (2026-12-01) and
        // longer while the rest of the suite runs beside it.
        if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(true); throw new TimeoutException($"snce {string.Join(' ', args)} did not finish in 10 minutes"); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
