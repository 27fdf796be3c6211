using System.Buffers.Binary;
using System.Net.Sockets;

namespace Snce.Distributed;

/// <summary>
/// Learns within seconds that another rank died, from the rendezvous connections (<see cref="RendezvousSession"/>),
/// which stay open for the whole run: the operating system closes a dead process's sockets, so the peer reads the end
/// of the stream at once (TCP keep-alive, probing every 2 s after 10 s idle, covers a host that vanished). A rank that
/// ends normally says goodbye first (<see cref="Goodbye"/>), so only an end without one is a failure. Rank 0 holds a
/// connection to every rank: when one dies, it tells the others which one before it fails itself; the other ranks hold
/// rank 0's connection only. NCCL itself may never report a peer that died inside a collective over NVLink: its kernels
/// wait for it (no NCCL timeout exists), which is why this channel exists.
/// </summary>
/// <remarks>Messages after the id (one byte each): 'B' goodbye; 'F' + rank (int32, little-endian): rank 0 saw that rank fail.</remarks>
public sealed class PeerLiveness : IDisposable
{
    const byte Bye = (byte)'B', Failed = (byte)'F';

    readonly RendezvousSession session;
    readonly int rank;
    readonly Action<string> onFailure;
    readonly List<Thread> readers = [];
    readonly HashSet<int> saidBye = [];
    readonly object gate = new();
    volatile bool closing, disposed;
    int reported;

    /// <summary>Watches every connection of <paramref name="session"/>; <paramref name="onFailure"/> gets the first failure's description (once, from a background thread).</summary>
    public PeerLiveness(RendezvousSession session, int rank, Action<string> onFailure)
    {
        (this.session, this.rank, this.onFailure) = (session, rank, onFailure);
        foreach (var (peer, client) in session.Peers)
        {
            KeepAlive(client.Client);
            var t = new Thread(() => Watch(peer, client)) { IsBackground = true, Name = $"rank {rank}: liveness of rank {peer}" };
            readers.Add(t);
            t.Start();
        }
    }

    /// <summary>The failure reported, or null.</summary>
    public string? Failure { get; private set; }

    /// <summary>Tells every peer that this rank ends normally (its connections then close without alarm).</summary>
    public void Goodbye()
    {
        closing = true;
        lock (gate)
            foreach (var c in session.Peers.Values)
                try { c.GetStream().Write([Bye]); }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException) { }
    }

    void Watch(int peer, TcpClient client)
    {
        // The session may be disposed before this thread first runs (a short test, a rank failing at start): a client
        // without a stream reads as the end of the stream, which the flags below tell from a failure.
        NetworkStream? stream = null;
        try { stream = client.GetStream(); }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException) { }
        var buffer = new byte[4];
        while (true)
        {
            int b;
            try { b = stream?.ReadByte() ?? -1; }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException) { b = -1; }
            if (b == Bye) { lock (gate) saidBye.Add(peer); continue; }
            if (b == Failed && rank != 0)
            {
                try { stream!.ReadExactly(buffer); }
                catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException) { }
                var failed = BinaryPrimitives.ReadInt32LittleEndian(buffer);
                Report($"rank 0 reports that rank {failed} ended without finishing (it exited, crashed or was killed), so rank {rank} stops too; see rank {failed}'s log");
                return;
            }
            if (b >= 0) continue;                                                       // nothing else is sent; ignore
            bool bye;
            lock (gate) bye = saidBye.Contains(peer);
            if (closing || bye || disposed) return;
            if (rank == 0)
            {
                Relay(peer);
                Report($"rank {peer} ended without finishing (its connection to rank 0 closed: it exited, crashed or was killed), so rank 0 stops too; see rank {peer}'s log");
            }
            else
                Report($"rank 0 ended without finishing (its connection closed: it exited, crashed or was killed), so rank {rank} stops too; see rank 0's log");
            return;
        }
    }

    /// <summary>Rank 0 tells every other live rank which rank failed.</summary>
    void Relay(int failed)
    {
        var message = new byte[5];
        message[0] = Failed;
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(1), failed);
        lock (gate)
            foreach (var (peer, c) in session.Peers)
                if (peer != failed)
                    try { c.GetStream().Write(message); }
                    catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException) { }
    }

    void Report(string why)
    {
        if (closing || disposed || Interlocked.Exchange(ref reported, 1) != 0) return;
        Failure = why;
        onFailure(why);
    }

    static void KeepAlive(Socket s)
    {
        try
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 10);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 2);
            s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        }
        catch (SocketException) { }                                                   // not supported here: the end of the stream still works
    }

    /// <summary>Stops watching and closes the connections (without a goodbye unless <see cref="Goodbye"/> was called: the peers then fail).</summary>
    public void Dispose()
    {
        disposed = true;
        session.Dispose();
        foreach (var t in readers) t.Join(TimeSpan.FromSeconds(5));
    }
}
