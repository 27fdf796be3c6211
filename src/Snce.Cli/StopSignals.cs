using System.Runtime.InteropServices;

namespace Snce.Cli;

/// <summary>
/// SIGINT (Ctrl-C), SIGTERM (schedulers, containers, <c>kill</c>) and SIGHUP (a closed terminal or SSH session) as
/// one "stop after this step" request: the first one cancels <see cref="Token"/> and suppresses the default
/// termination, so a long verb finishes its step, saves and exits with 128 + the signal number
/// (<see cref="ExitCode"/>: 130, 143, 129); a second signal ends the process at once.
/// </summary>
public sealed class StopSignals : IDisposable
{
    readonly CancellationTokenSource cancel = new();
    readonly PosixSignalRegistration[] registrations;
    readonly string onStop;

    /// <param name="onStop">What the verb does when asked to stop, e.g. "stopping after this step and saving a checkpoint".</param>
    public StopSignals(string onStop)
    {
        this.onStop = onStop;
        registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }
            .Where(s => s == PosixSignal.SIGINT || !OperatingSystem.IsWindows())
            .Select(s => PosixSignalRegistration.Create(s, Handle))];
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => cancel.Token;

    /// <summary>The first signal received, if any.</summary>
    public PosixSignal? Received { get; private set; }

    /// <summary>The shell's convention for a process stopped by a signal: 128 + its number (SIGINT 130, SIGTERM 143, SIGHUP 129).</summary>
    public int ExitCode => Received switch
    {
        PosixSignal.SIGINT => 130,
        PosixSignal.SIGTERM => 143,
        PosixSignal.SIGHUP => 129,
        null => 0,
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
        if (cancel.IsCancellationRequested) return;          // the second signal: default action, the process ends
        context.Cancel = true;
        Received = context.Signal;
        cancel.Cancel();
        try { Console.Error.WriteLine($"\nsnce: {Name(context.Signal)} received: {onStop} (send it again to abort)..."); }
        catch (IOException) { }                               // SIGHUP: the terminal may be gone
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var r in registrations) r.Dispose();
        cancel.Dispose();
    }
}
