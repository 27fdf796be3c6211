using Snce.Distributed;

namespace Snce.Tests.Distributed;

/// <summary>The NCCL watchdog with a fake communicator: it aborts once on the first asynchronous error and then throws its reason.</summary>
public class CollectiveWatchdogTests
{
    [Fact]
    public void AnAsyncErrorAbortsTheCommunicatorOnceFromTheBackground()
    {
        var polls = 0;
        var aborts = 0;
        using var aborted = new ManualResetEventSlim();
        // Healthy (0, then 7 = in progress) for a few polls, then ncclRemoteError (6).
        int Poll() => Interlocked.Increment(ref polls) switch { < 3 => 0, < 5 => 7, _ => 6 };
        using var dog = new CollectiveWatchdog(1, Poll, e => e == 6 ? "remote process exited or there was a network error" : "?",
            () => { Interlocked.Increment(ref aborts); aborted.Set(); }, TimeSpan.FromMilliseconds(10));
        Assert.True(aborted.Wait(TimeSpan.FromSeconds(30)), "the watchdog never aborted");
        Assert.True(dog.Aborted);
        var pollsAtAbort = Volatile.Read(ref polls);
        dog.Check();                                                                // no more polls of a freed communicator
        dog.Fail("again");                                                          // nor a second abort
        Assert.Equal(pollsAtAbort, Volatile.Read(ref polls));
        Assert.Equal(1, aborts);
        var e = Assert.Throws<DistributedSetupException>(dog.ThrowIfFailed);
        Assert.Contains("rank 1", e.Message);
        Assert.Contains("remote process exited", e.Message);
        Assert.Contains("ncclResult_t 6", e.Message);
    }

    [Fact]
    public void AHealthyCommunicatorIsLeftAlone()
    {
        var aborts = 0;
        using var dog = new CollectiveWatchdog(0, () => 7, _ => "in progress", () => aborts++, TimeSpan.FromHours(1));
        for (var i = 0; i < 5; i++) dog.Check();                                   // the owner's own polls after a collective
        dog.ThrowIfFailed();
        Assert.False(dog.Aborted);
        Assert.Equal(0, aborts);
    }

    [Fact]
    public void AFailingPollCountsAsAFailure()
    {
        var aborts = 0;
        using var dog = new CollectiveWatchdog(2, () => throw new InvalidOperationException("communicator gone"), _ => "", () => aborts++, TimeSpan.FromHours(1));
        dog.Check();
        Assert.Equal(1, aborts);
        Assert.Contains("communicator gone", Assert.Throws<DistributedSetupException>(dog.ThrowIfFailed).Message);
    }
}
