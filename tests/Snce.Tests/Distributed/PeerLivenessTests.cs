using System.Collections.Concurrent;
using System.Net;
using Snce.Distributed;

namespace Snce.Tests.Distributed;

/// <summary>The rendezvous connections as a liveness channel, over loopback with a fake id: an end without goodbye is a named failure.</summary>
public class PeerLivenessTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Sessions of ranks 0..world−1 of one world, every rank a task of this process.</summary>
    static async Task<RendezvousSession[]> World(int world)
    {
        using var server = RendezvousServer.Start(IPAddress.Loopback, 0);
        var id = new byte[Rendezvous.IdBytes];
        new Random(world).NextBytes(id);
        var joins = Enumerable.Range(1, world - 1).Select(r => Task.Run(async () =>
        {
            var (got, c) = await Rendezvous.JoinCoreAsync("127.0.0.1", server.Port, r, world, Timeout);
            return new RendezvousSession(got, new Dictionary<int, System.Net.Sockets.TcpClient> { [0] = c });
        })).ToList();
        var rank0 = new RendezvousSession(id, await server.ServeCoreAsync(world, id, Timeout));
        var others = await Task.WhenAll(joins);
        Assert.All(others, s => Assert.Equal(id, s.Id));
        return [rank0, .. others];
    }

    sealed class Watch : IDisposable
    {
        public readonly PeerLiveness Liveness;
        public readonly TaskCompletionSource<string> Failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Watch(RendezvousSession s, int rank) => Liveness = new PeerLiveness(s, rank, why => Failed.TrySetResult(why));
        public void Dispose() => Liveness.Dispose();
    }

    [Fact]
    public async Task ARankThatDiesWithoutGoodbyeIsNamedToEveryOtherRank()
    {
        var sessions = await World(3);
        var watches = sessions.Select((s, r) => new Watch(s, r)).ToArray();
        try
        {
            watches[2].Dispose();                                                   // rank 2 "crashes": its sockets close without a goodbye
            var at0 = await watches[0].Failed.Task.WaitAsync(Timeout);
            var at1 = await watches[1].Failed.Task.WaitAsync(Timeout);
            Assert.Contains("rank 2 ended without finishing", at0);
            Assert.Contains("rank 0 reports that rank 2 ended without finishing", at1);
            Assert.False(watches[2].Failed.Task.IsCompleted);                       // its own close is not its failure
        }
        finally
        {
            foreach (var w in watches) w.Dispose();
        }
    }

    [Fact]
    public async Task RankZeroDyingIsSeenByTheOthers()
    {
        var sessions = await World(2);
        using var rank1 = new Watch(sessions[1], 1);
        using (new Watch(sessions[0], 0)) { }                                      // rank 0 ends without a goodbye
        Assert.Contains("rank 0 ended without finishing", await rank1.Failed.Task.WaitAsync(Timeout));
    }

    [Fact]
    public async Task RanksThatSayGoodbyeEndWithoutAlarm()
    {
        var sessions = await World(3);
        var watches = sessions.Select((s, r) => new Watch(s, r)).ToArray();
        foreach (var r in new[] { 2, 1, 0 })                                       // rank 2 finishes first, rank 0 last
        {
            watches[r].Liveness.Goodbye();
            watches[r].Dispose();                                                   // joins its readers: what they saw is final
        }
        var failures = new ConcurrentBag<string>(watches.Where(w => w.Failed.Task.IsCompleted).Select(w => w.Failed.Task.Result));
        Assert.Empty(failures);
        Assert.All(watches, w => Assert.Null(w.Liveness.Failure));
    }
}
