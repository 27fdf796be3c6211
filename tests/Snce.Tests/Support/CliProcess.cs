using System.Diagnostics;
using System.Text;

namespace Snce.Tests.Support;

/// <summary>
/// <c>dotnet snce.dll ARGS</c> as a separate process that a test can wait on and signal (SIGINT, SIGTERM, SIGHUP reach
/// only a real process); stdout and stderr are collected as they come.
/// </summary>
public sealed class CliProcess : IDisposable
{
    readonly Process process;
    readonly StringBuilder stdout = new(), stderr = new();

    CliProcess(Process process) => this.process = process;

    // A child inherits ignored signals, and .NET keeps ignoring a signal that was ignored when the process started (as it
    // should: that is what nohup and a non-interactive shell's '&' ask for). A test runner started under nohup or as a
    // background job ('(cmd &)' ignores SIGINT and SIGQUIT) thus made SIGHUP / SIGINT never reach the CLI (CI stop tests
    // hung on 2026-12-08). The tests are about the CLI's handling, so they start it with default dispositions where coreutils'
    // env can (--default-signal, coreutils 8.31+).
    const string ResetSignals = "--default-signal=HUP,INT,TERM";
    static readonly bool DefaultSignals = EnvResets();

    static bool EnvResets()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("env", [ResetSignals, "true"]) { UseShellExecute = false, RedirectStandardError = true })!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    public int Id => process.Id;

    /// <summary>Standard error so far.</summary>
    public string Stderr { get { lock (stderr) return stderr.ToString(); } }

    public static CliProcess Start(IDictionary<string, string>? env, params string[] args) => Start(env, false, args);

    /// <summary>As <see cref="Start(IDictionary{string, string}?, string[])"/>; with <paramref name="pipeInput"/> its standard input is a pipe (<see cref="Input"/>).</summary>
    public static CliProcess Start(IDictionary<string, string>? env, bool pipeInput, params string[] args)
    {
        var psi = new ProcessStartInfo(DefaultSignals ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = pipeInput, UseShellExecute = false };
        if (DefaultSignals) { psi.ArgumentList.Add(ResetSignals); psi.ArgumentList.Add("dotnet"); }     // env execs dotnet: the same pid
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "snce.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = new CliProcess(Process.Start(psi)!);
        p.process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (p.stdout) p.stdout.AppendLine(e.Data); };
        p.process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (p.stderr) p.stderr.AppendLine(e.Data); };
        p.process.BeginOutputReadLine();
        p.process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Polls <paramref name="ready"/> until it holds; fails naming <paramref name="what"/> (and the output) if the process ends or time runs out first.</summary>
    public async Task WaitUntil(Func<bool> ready, string what, int seconds = 120)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!ready())
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
                Assert.Fail($"{what} did not happen (exited: {process.HasExited}); stderr:\n{Stderr}");
            await Task.Delay(50);
        }
    }

    /// <summary>Its standard input, when started with a pipe there.</summary>
    public StreamWriter Input => process.StandardInput;

    /// <summary>Sends SIG<paramref name="name"/> (INT, TERM, HUP) with kill(1).</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", [$"-{name}", Id.ToString()])!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>Waits for the process to end; its exit code and whole output.</summary>
    public async Task<CliRunner.Result> ExitAsync(int seconds = 120)
    {
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(seconds)))
            try { await process.WaitForExitAsync(wait.Token); }
            catch (OperationCanceledException)
            {
                // Say where it stood (a run that hung once in CI after SIGHUP left only "a task was canceled"), then kill it.
                string said;
                lock (stdout) lock (stderr) said = $"stdout:\n{Tail(stdout.ToString())}\nstderr:\n{Tail(stderr.ToString())}";
                Assert.Fail($"the process did not exit within {seconds} s; {said}");
            }
        process.WaitForExit();                                                  // the output events are drained
        lock (stdout) lock (stderr) return new CliRunner.Result(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    static string Tail(string text, int chars = 4000) => text.Length <= chars ? text : "…" + text[^chars..];

    public void Dispose()
    {
        if (!process.HasExited) try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        process.Dispose();
    }
}
