namespace Snce.Distributed;

/// <summary>
/// A background thread that polls a communicator's asynchronous error (ncclCommGetAsyncError) every
/// <see cref="Period"/> while the communicator lives, and on the first error aborts it (ncclCommAbort, which makes its
/// pending kernels return) and records why. A rank blocked in a host read behind a collective whose peer failed then
/// resumes within about one period and throws from <see cref="ThrowIfFailed"/>, instead of waiting forever.
/// </summary>
/// <remarks>
/// NCCL may call its communicator from another thread for these two calls only: ncclCommGetAsyncError and
/// ncclCommAbort (NCCL user guide, "Fault tolerance"). The owner serializes its own calls against the abort through
/// <see cref="Gate"/>: it calls NCCL under the lock and never uses the handle after <see cref="Aborted"/>. The abort waits
/// for the gate at most <see cref="GateWait"/>: a call blocked inside NCCL (a connection to a dead peer) is exactly what
/// ncclCommAbort from another thread is for.
/// </remarks>
public sealed class CollectiveWatchdog : IDisposable
{
    /// <summary>How long an abort waits for the owner to leave an NCCL call before it aborts anyway.</summary>
    public static readonly TimeSpan GateWait = TimeSpan.FromSeconds(2);

    /// <summary>How often the error is polled.</summary>
    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromMilliseconds(500);

    readonly Func<int> poll;
    readonly Func<int, string> describe;
    readonly Action abort;
    readonly int rank;
    readonly Thread thread;
    readonly ManualResetEventSlim stop = new();
    volatile string? failure;

    /// <param name="rank">This process's rank, for the message.</param>
    /// <param name="poll">Returns the communicator's error code: 0 (ncclSuccess) or 7 (ncclInProgress) mean healthy.</param>
    /// <param name="describe">The error code's text (ncclGetErrorString).</param>
    /// <param name="abort">Aborts the communicator; called once, under <see cref="Gate"/>.</param>
    /// <param name="period">Polling period (default <see cref="DefaultPeriod"/>).</param>
    public CollectiveWatchdog(int rank, Func<int> poll, Func<int, string> describe, Action abort, TimeSpan? period = null)
    {
        (this.rank, this.poll, this.describe, this.abort) = (rank, poll, describe, abort);
        Period = period ?? DefaultPeriod;
        thread = new Thread(Watch) { IsBackground = true, Name = $"NCCL watchdog (rank {rank})" };
        thread.Start();
    }

    /// <summary>The polling period.</summary>
    public TimeSpan Period { get; }

    /// <summary>Held by the owner while it calls the communicator, and by the watchdog while it aborts it.</summary>
    public object Gate { get; } = new();

    /// <summary>True once the watchdog (or <see cref="Fail"/>) aborted the communicator; its handle is gone.</summary>
    public bool Aborted => failure is not null;

    /// <summary>Why the communicator was aborted, or null.</summary>
    public string? Failure => failure;

    /// <summary>Throws <see cref="DistributedSetupException"/> with <see cref="Failure"/> when the communicator was aborted.</summary>
    public void ThrowIfFailed()
    {
        if (failure is { } f) throw new DistributedSetupException(f);
    }

    /// <summary>Polls once now (the owner calls it after a collective, besides the background polls).</summary>
    public void Check()
    {
        lock (Gate) Poll();
    }

    void Poll()
    {
        if (failure is not null) return;
        int e;
        try { e = poll(); }
        catch (Exception ex) { Fail($"rank {rank}: polling NCCL's asynchronous error failed ({ex.Message})"); return; }
        if (e is 0 or 7) return;                                                     // ncclSuccess, ncclInProgress
        Fail($"rank {rank}: NCCL reported '{describe(e)}' (ncclResult_t {e}) during a collective, so the communicator was aborted; "
             + "another rank probably failed or was killed: see its log (logs/rank-R.log under the launcher)");
    }

    /// <summary>Aborts the communicator (once) and records <paramref name="why"/>.</summary>
    public void Fail(string why)
    {
        var held = Monitor.TryEnter(Gate, GateWait);
        try
        {
            if (failure is not null) return;
            failure = why;                  // first: a host read that the abort releases must already see the failure
            try { abort(); }
            catch (Exception ex) { failure = why + $" (aborting the communicator failed too: {ex.Message})"; }
        }
        finally
        {
            if (held) Monitor.Exit(Gate);
        }
    }

    void Watch()
    {
        while (!stop.Wait(Period))
        {
            Poll();                                      // not under the gate: the owner may be blocked in a call with it held
            if (failure is not null) return;
        }
    }

    /// <summary>Stops polling (before the owner destroys the communicator).</summary>
    public void Dispose()
    {
        stop.Set();
        if (Thread.CurrentThread != thread) thread.Join();
        stop.Dispose();
    }
}
