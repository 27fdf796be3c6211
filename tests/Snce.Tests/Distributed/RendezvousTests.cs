using System.Net;
using Snce.Distributed;

namespace Snce.Tests.Distributed;

/// <summary>The NCCL-id exchange over loopback with a fake id, every rank a task of this process.</summary>
public class RendezvousTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    static byte[] FakeId(int seed)
    {
        var id = new byte[Rendezvous.IdBytes];
        new Random(seed).NextBytes(id);
        return id;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public async Task EveryRankReceivesRankZerosBytes(int world)
    {
        using var server = RendezvousServer.Start(IPAddress.Loopback, 0);
        var id = FakeId(world);
        var made = 0;
        var joins = Enumerable.Range(1, world - 1)
            .Select(r => Task.Run(() => Rendezvous.JoinAsync("127.0.0.1", server.Port, r, world, Timeout))).ToList();
        var rank0 = world == 1
            ? Rendezvous.ExchangeAsync(DistributedEnvironment.SingleProcess, () => { made++; return id; }, Timeout)
            : Serve();
        var got = await Task.WhenAll(joins.Append(rank0));

        async Task<byte[]> Serve()
        {
            await server.ServeAsync(world, id, Timeout);
            return id;
        }
        Assert.Equal(world, got.Length);
        Assert.All(got, g => Assert.Equal(id, g));
        Assert.Equal(world == 1 ? 1 : 0, made);
    }

    [Fact]
    public async Task ClientsRetryUntilRankZeroListens()
    {
        int port;
        using (var probe = RendezvousServer.Start(IPAddress.Loopback, 0)) port = probe.Port;
        var join = Task.Run(() => Rendezvous.JoinAsync("127.0.0.1", port, 1, 2, Timeout));
        await Task.Delay(500);
        Assert.False(join.IsCompleted);
        using var server = RendezvousServer.Start(IPAddress.Loopback, port);
        var id = FakeId(7);
        await server.ServeAsync(2, id, Timeout);
        Assert.Equal(id, await join);
    }

    [Fact]
    public async Task AMissingRankTimesOutNamingIt()
    {
        using var server = RendezvousServer.Start(IPAddress.Loopback, 0);
        var joins = new[] { 1, 3 }.Select(r => Task.Run(() => Rendezvous.JoinAsync("127.0.0.1", server.Port, r, 4, TimeSpan.FromSeconds(3)))).ToList();
        var e = await Assert.ThrowsAsync<DistributedSetupException>(() => server.ServeAsync(4, FakeId(1), TimeSpan.FromSeconds(1)));
        Assert.StartsWith("rank 0: rank 2 of 4 did not join within 1 s", e.Message);
        foreach (var j in joins) await Assert.ThrowsAsync<DistributedSetupException>(() => j);
    }

    [Fact]
    public async Task RankZeroAloneNamesAllMissingRanks()
    {
        using var server = RendezvousServer.Start(IPAddress.Loopback, 0);
        var e = await Assert.ThrowsAsync<DistributedSetupException>(() => server.ServeAsync(3, FakeId(1), TimeSpan.FromMilliseconds(300)));
        Assert.StartsWith("rank 0: ranks 1, 2 of 3 did not join", e.Message);
    }

    [Fact]
    public async Task NoRankZeroTimesOutNamingTheAddress()
    {
        int port;
        using (var probe = RendezvousServer.Start(IPAddress.Loopback, 0)) port = probe.Port;
        var e = await Assert.ThrowsAsync<DistributedSetupException>(() => Rendezvous.JoinAsync("127.0.0.1", port, 1, 2, TimeSpan.FromSeconds(1)));
        Assert.StartsWith($"rank 1 could not reach rank 0 at 127.0.0.1:{port} within 1 s", e.Message);
    }

    [Theory]
    [InlineData(new[] { 1, 1 }, new[] { 3, 3 }, "two processes have RANK=1")]
    [InlineData(new[] { 2 }, new[] { 5 }, "rank 2 reports WORLD_SIZE=5 but rank 0 has WORLD_SIZE=3")]
    public async Task AWrongRankIsRefusedOnBothSides(int[] ranks, int[] worlds, string message)
    {
        using var server = RendezvousServer.Start(IPAddress.Loopback, 0);
        var serve = server.ServeAsync(3, FakeId(2), Timeout);
        var joins = new List<Task<byte[]>>();
        for (var i = 0; i < ranks.Length; i++)
        {
            joins.Add(Rendezvous.JoinAsync("127.0.0.1", server.Port, ranks[i], worlds[i], Timeout));
            await Task.Delay(200);
        }
        var e = await Assert.ThrowsAsync<DistributedSetupException>(() => serve);
        Assert.Equal($"rank 0: {message}; " , e.Message[..(message.Length + 10)]);
        // Whichever arrived second (under load the order may differ) is told why; the rest lose the connection.
        var errors = new List<string>();
        foreach (var j in joins) errors.Add((await Assert.ThrowsAsync<DistributedSetupException>(() => j)).Message);
        Assert.Single(errors, m => m.Contains($"refused rank {ranks[^1]}: {message}"));
    }

    [Fact]
    public void AJoiningRankMustBeOneToWorldMinusOne() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Rendezvous.JoinAsync("127.0.0.1", 1, 3, 3, Timeout).GetAwaiter().GetResult());
}
