using System.Runtime.InteropServices;

namespace Snce.Cli;

/// <summary>
/// SIGINT (Ctrl-C), SIGTERM (schedulers, containers, <c>kill</c>) and SIGHUP (a closed terminal or SSH session) as
/// one "stop after this step" request: the first one cancels <see cref="Token"/> and suppresses the default
/// termination, so a long verb finishes its step, saves and exits with 128 + the signal number
/// (<see cref="ExitCode"/>: 130, 143, 129); a second signal ends the process at once.
/// </summary>
/// <remarks>
/// A parent <c>snce</c> (the study) that started this process with <see cref="ParentPipeVariable"/> = 1 asks it to
/// stop through standard input instead of a signal: a line naming the parent's signal (SIGTERM, SIGINT, SIGHUP, or
/// anything else, read as SIGTERM), or end of input when the parent itself ended (read as SIGHUP: the controlling
/// process is gone). Such a request is not a signal, so the terminal's Ctrl-C, which reaches the parent and this job
/// alike, still counts as the first signal here and does not abort the step.
/// </remarks>
public sealed class StopSignals : IDisposable
{
    /// <summary>Set to 1 in a child's environment when its parent sends stop requests through the child's standard input.</summary>
    public const string ParentPipeVariable = "SNCE_STOP_FROM_PARENT";

    readonly CancellationTokenSource cancel = new();
    readonly PosixSignalRegistration[] registrations;
    readonly string onStop;
    readonly object gate = new();
    bool signalled, disposed;

    /// <param name="onStop">What the verb does when asked to stop, e.g. "stopping after this step and saving a checkpoint".</param>
    public StopSignals(string onStop)
    {
        this.onStop = onStop;
        registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }
            .Where(s => s == PosixSignal.SIGINT || !OperatingSystem.IsWindows())
            .Select(s => PosixSignalRegistration.Create(s, Handle))];
        if (Environment.GetEnvironmentVariable(ParentPipeVariable) == "1")
            new Thread(WatchParent) { IsBackground = true, Name = "stop requests from the parent process" }.Start();
    }

    /// <summary>Cancelled by the first signal (or the parent's request).</summary>
    public CancellationToken Token => cancel.Token;

    /// <summary>The first signal received (or forwarded by the parent), if any.</summary>
    public PosixSignal? Received { get; private set; }

    /// <summary>The shell's convention for a process stopped by a signal: 128 + its number (SIGINT 130, SIGTERM 143, SIGHUP 129).</summary>
    public int ExitCode => Received is { } s ? CodeOf(s) : 0;

    /// <summary>128 + the signal's number: SIGINT 130, SIGTERM 143, SIGHUP 129.</summary>
    public static int CodeOf(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGINT => 130,
        PosixSignal.SIGTERM => 143,
        PosixSignal.SIGHUP => 129,
        var s => throw new InvalidOperationException($"unexpected signal {s}"),
    };

    /// <summary>The signal's name, e.g. SIGTERM.</summary>
    public static string Name(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGINT => "SIGINT",
        PosixSignal.SIGTERM => "SIGTERM",
        PosixSignal.SIGHUP => "SIGHUP",
        var s => s.ToString(),
    };

    void Handle(PosixSignalContext context)
    {
        lock (gate)
        {
            if (signalled) return;                            // the second signal: default action, the process ends
            signalled = true;
        }
        context.Cancel = true;
        Request(context.Signal, $"{Name(context.Signal)} received", "send it again to abort");
    }

    /// <summary>Reads the parent's one stop request (a line, or the end of input when the parent ended).</summary>
    void WatchParent()
    {
        string? line;
        try { line = Console.In.ReadLine()?.Trim(); }
        catch (IOException) { line = null; }
        var signal = line switch
        {
            null => PosixSignal.SIGHUP,
            "SIGINT" => PosixSignal.SIGINT,
            "SIGHUP" => PosixSignal.SIGHUP,
            _ => PosixSignal.SIGTERM,
        };
        Request(signal, line is null ? "the parent process ended" : $"the parent process asks to stop ({line})", "a signal sent twice aborts");
    }

    void Request(PosixSignal signal, string why, string abort)
    {
        lock (gate)
        {
            if (disposed || cancel.IsCancellationRequested) return;
            Received = signal;
            cancel.Cancel();
        }
        try { Console.Error.WriteLine($"\nsnce: {why}: {onStop} ({abort})..."); }
        catch (IOException) { }                               // SIGHUP: the terminal may be gone
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var r in registrations) r.Dispose();
        lock (gate)
        {
            disposed = true;
            cancel.Dispose();
        }
    }
}
