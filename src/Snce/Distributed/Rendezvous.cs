using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Snce.Distributed;

/// <summary>
/// Hands rank 0's NCCL unique id (128 bytes) to every other rank over TCP, the way torchrun's store does for
/// PyTorch: rank 0 listens on MASTER_ADDR:MASTER_PORT, each other rank connects (retrying until its timeout) and
/// says its rank and world size; once all WORLD_SIZE−1 ranks have arrived rank 0 sends each the id, so the
/// exchange is also a barrier. Duplicate, out-of-range or mismatched ranks are refused on both sides; every wait
/// is bounded and its error names the ranks that did not arrive.
/// </summary>
/// <remarks>
/// Wire format (little-endian): client → server "SNCE" rank:int32 world:int32; server → client status:byte, then
/// the id (status 0) or a length-prefixed UTF-8 error (status 1).
/// </remarks>
public static class Rendezvous
{
    /// <summary>Bytes of an NCCL unique id (NCCL_UNIQUE_ID_BYTES).</summary>
    public const int IdBytes = 128;

    static ReadOnlySpan<byte> Magic => "SNCE"u8;
    const int HelloBytes = 12;

    /// <summary>
    /// Rank 0 calls <paramref name="makeId"/> and serves its bytes; the others fetch them. Returns the same
    /// <see cref="IdBytes"/> bytes on every rank.
    /// </summary>
    public static async Task<byte[]> ExchangeAsync(DistributedEnvironment env, Func<byte[]> makeId, TimeSpan timeout, CancellationToken ct = default)
    {
        using var session = await OpenAsync(env, makeId, timeout, ct);
        return session.Id;
    }

    /// <summary>
    /// As <see cref="ExchangeAsync"/>, keeping the connections open afterwards (rank 0: one per other rank; the others: one
    /// to rank 0) for <see cref="PeerLiveness"/>, which learns from them when a rank dies.
    /// </summary>
    public static async Task<RendezvousSession> OpenAsync(DistributedEnvironment env, Func<byte[]> makeId, TimeSpan timeout, CancellationToken ct = default)
    {
        if (env.WorldSize == 1) return new RendezvousSession(makeId(), new Dictionary<int, TcpClient>());
        if (env.Rank != 0)
        {
            var (joined, client) = await JoinCoreAsync(env.MasterAddress, env.MasterPort, env.Rank, env.WorldSize, timeout, ct);
            return new RendezvousSession(joined, new Dictionary<int, TcpClient> { [0] = client });
        }
        using var server = RendezvousServer.Start(IPAddress.Any, env.MasterPort);
        var id = makeId();
        return new RendezvousSession(id, await server.ServeCoreAsync(env.WorldSize, id, timeout, ct));
    }

    /// <summary>A rank other than 0: connects to rank 0 (retrying until <paramref name="timeout"/>) and returns the id it sends.</summary>
    public static async Task<byte[]> JoinAsync(string host, int port, int rank, int world, TimeSpan timeout, CancellationToken ct = default)
    {
        var (id, client) = await JoinCoreAsync(host, port, rank, world, timeout, ct);
        client.Dispose();
        return id;
    }

    /// <summary>As <see cref="JoinAsync"/>, returning the connection too (open).</summary>
    public static async Task<(byte[] Id, TcpClient Connection)> JoinCoreAsync(string host, int port, int rank, int world, TimeSpan timeout, CancellationToken ct = default)
    {
        if (rank <= 0 || rank >= world) throw new ArgumentOutOfRangeException(nameof(rank), $"joining ranks are 1..{world - 1} (got {rank})");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var client = await ConnectAsync(host, port, rank, timeout, deadline.Token);
        var ok = false;
        try
        {
            var id = await ReceiveIdAsync(client, host, port, rank, world, timeout, deadline.Token, ct);
            ok = true;
            return (id, client);
        }
        finally
        {
            if (!ok) client.Dispose();
        }
    }

    static async Task<byte[]> ReceiveIdAsync(TcpClient client, string host, int port, int rank, int world, TimeSpan timeout, CancellationToken deadline, CancellationToken ct)
    {
        var stream = client.GetStream();
        var hello = new byte[HelloBytes];
        Magic.CopyTo(hello);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), rank);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), world);
        try
        {
            await stream.WriteAsync(hello, deadline);
            var status = new byte[1];
            await stream.ReadExactlyAsync(status, deadline);
            if (status[0] == 0)
            {
                var id = new byte[IdBytes];
                await stream.ReadExactlyAsync(id, deadline);
                return id;
            }
            var len = new byte[4];
            await stream.ReadExactlyAsync(len, deadline);
            var text = new byte[Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(len), 0, 4096)];
            await stream.ReadExactlyAsync(text, deadline);
            throw new DistributedSetupException($"rank 0 at {host}:{port} refused rank {rank}: {Encoding.UTF8.GetString(text)}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DistributedSetupException($"rank {rank}: connected to rank 0 at {host}:{port} but it did not send the NCCL id within {timeout.TotalSeconds:0.#} s; "
                + "some other rank has not arrived (rank 0's error names it)");
        }
        catch (IOException e)
        {
            throw new DistributedSetupException($"rank {rank}: rank 0 at {host}:{port} closed the rendezvous before sending the NCCL id ({e.Message}); see rank 0's error", e);
        }
    }

    static async Task<TcpClient> ConnectAsync(string host, int port, int rank, TimeSpan timeout, CancellationToken ct)
    {
        Exception? last = null;
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            var client = new TcpClient { NoDelay = true };
            try
            {
                await client.ConnectAsync(host, port, ct);
                return client;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                client.Dispose();
                if (e is SocketException) last = e;
                if (ct.IsCancellationRequested) break;
            }
            try { await Task.Delay(delay, ct); }
            catch (OperationCanceledException) { break; }
            delay = TimeSpan.FromMilliseconds(Math.Min(1000, delay.TotalMilliseconds * 2));
        }
        throw new DistributedSetupException($"rank {rank} could not reach rank 0 at {host}:{port} within {timeout.TotalSeconds:0.#} s"
            + (last is null ? "" : $" (last error: {last.Message})")
            + "; check that rank 0 is running and that MASTER_ADDR and MASTER_PORT are the same on every rank");
    }
}

/// <summary>What a rendezvous leaves: the NCCL id and the open connections to the peers it met (see <see cref="PeerLiveness"/>).</summary>
/// <param name="Id">Rank 0's NCCL unique id.</param>
/// <param name="Peers">Rank 0: every other rank's connection, by rank; another rank: rank 0's; a world of one: none.</param>
public sealed record RendezvousSession(byte[] Id, IReadOnlyDictionary<int, TcpClient> Peers) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var c in Peers.Values) c.Dispose();
    }
}

/// <summary>Rank 0's side of <see cref="Rendezvous"/>: a listening socket that serves one id to WORLD_SIZE−1 ranks.</summary>
public sealed class RendezvousServer : IDisposable
{
    readonly TcpListener listener;

    RendezvousServer(TcpListener listener) => this.listener = listener;

    /// <summary>Starts listening on <paramref name="address"/>:<paramref name="port"/> (port 0 picks a free one, see <see cref="Port"/>).</summary>
    public static RendezvousServer Start(IPAddress address, int port)
    {
        var listener = new TcpListener(address, port);
        try { listener.Start(); }
        catch (SocketException e)
        {
            throw new DistributedSetupException($"rank 0 cannot listen on port {port} ({e.Message}); set MASTER_PORT to a free port", e);
        }
        return new RendezvousServer(listener);
    }

    /// <summary>The port listened on.</summary>
    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) for ranks 1..<paramref name="world"/>−1, then sends each
    /// <paramref name="id"/>. Throws naming the missing ranks on timeout, or the offending rank when one is a
    /// duplicate, out of range or reports a different world size (which is refused with the same message).
    /// </summary>
    public async Task ServeAsync(int world, byte[] id, TimeSpan timeout, CancellationToken ct = default)
    {
        foreach (var c in (await ServeCoreAsync(world, id, timeout, ct)).Values) c.Dispose();
    }

    /// <summary>As <see cref="ServeAsync"/>, returning the open connection of each rank 1..<paramref name="world"/>−1.</summary>
    public async Task<Dictionary<int, TcpClient>> ServeCoreAsync(int world, byte[] id, TimeSpan timeout, CancellationToken ct = default)
    {
        if (id.Length != Rendezvous.IdBytes) throw new ArgumentException($"the id must be {Rendezvous.IdBytes} bytes (got {id.Length})", nameof(id));
        var clients = new Dictionary<int, TcpClient>();
        var served = false;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            while (clients.Count < world - 1)
            {
                TcpClient client;
                try { client = await listener.AcceptTcpClientAsync(deadline.Token); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    var missing = Enumerable.Range(1, world - 1).Where(r => !clients.ContainsKey(r)).ToList();
                    throw new DistributedSetupException($"rank 0: rank{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} of {world} did not join within "
                        + $"{timeout.TotalSeconds:0.#} s; check that every rank was started with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE={world}");
                }
                client.NoDelay = true;
                var (rank, clientWorld) = await ReadHelloAsync(client, deadline.Token);
                if (rank is null) { client.Dispose(); continue; }  // not one of ours (a port probe): ignore it
                var error = clientWorld != world ? $"rank {rank} reports WORLD_SIZE={clientWorld} but rank 0 has WORLD_SIZE={world}; start every rank with the same WORLD_SIZE"
                    : rank <= 0 || rank >= world ? $"RANK={rank} is outside 1..{world - 1}; give each process a distinct RANK in 0..{world - 1}"
                    : clients.ContainsKey(rank.Value) ? $"two processes have RANK={rank}; give each process a distinct RANK in 0..{world - 1}"
                    : null;
                if (error is not null)
                {
                    await RefuseAsync(client, error);
                    throw new DistributedSetupException($"rank 0: {error}");
                }
                clients[rank.Value] = client;
            }
            var ok = new byte[1 + id.Length];
            id.CopyTo(ok, 1);
            foreach (var (rank, c) in clients)
            {
                try { await c.GetStream().WriteAsync(ok, deadline.Token); }
                catch (IOException e) { throw new DistributedSetupException($"rank 0: rank {rank} left before it received the NCCL id ({e.Message})", e); }
            }
            served = true;
            return clients;
        }
        finally
        {
            if (!served) foreach (var c in clients.Values) c.Dispose();
        }
    }

    static async Task<(int? Rank, int World)> ReadHelloAsync(TcpClient client, CancellationToken ct)
    {
        var hello = new byte[12];
        using var quick = CancellationTokenSource.CreateLinkedTokenSource(ct);
        quick.CancelAfter(TimeSpan.FromSeconds(10));
        try { await client.GetStream().ReadExactlyAsync(hello, quick.Token); }
        catch (Exception e) when (e is IOException or OperationCanceledException && !ct.IsCancellationRequested) { return (null, 0); }
        if (!hello.AsSpan(0, 4).SequenceEqual("SNCE"u8)) return (null, 0);
        return (BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(4)), BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8)));
    }

    static async Task RefuseAsync(TcpClient client, string message)
    {
        var text = Encoding.UTF8.GetBytes(message);
        var reply = new byte[5 + text.Length];
        reply[0] = 1;
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(1), text.Length);
        text.CopyTo(reply, 5);
        try { await client.GetStream().WriteAsync(reply); }
        catch (IOException) { }  // it left already; rank 0's own error still says what happened
        client.Dispose();
    }

    /// <inheritdoc/>
    public void Dispose() => listener.Stop();
}
