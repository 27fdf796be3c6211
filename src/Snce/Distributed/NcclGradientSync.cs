using Snce.Native;
using Snce.Native.Cuda;
using Snce.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Distributed;

/// <summary>
/// Data-parallel gradient sync through NCCL, one process per GPU: gradients are summed over ranks in buckets of the
/// flat gradient buffer (one ncclGroup, so NCCL launches them together) and divided by the world size; metrics the
/// same way; parameters broadcast from rank 0 at start. Collectives run on stream 0, libtorch's default stream, so
/// they are ordered after backward and before the optimizer without a host sync (as verified on 2×H200 in
/// FACTS.md). A <see cref="CollectiveWatchdog"/> polls NCCL's asynchronous error every 0.5 s while the communicator
/// lives and aborts it on an error, so a rank blocked behind a failed collective throws within about a second.
/// </summary>
public sealed class NcclGradientSync : IGradientSync, IDisposable
{
    /// <summary>Default bucket budget (PyTorch DDP's bucket_cap_mb default).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly Nccl nccl;
    readonly long bucketBytes;
    readonly CollectiveWatchdog watchdog;
    readonly PeerLiveness liveness;
    bool finished;
    nint comm;
    (long Size, int ElementSize, IReadOnlyList<GradientBuckets.Bucket> Buckets)? plan;   // the same buffer every step: planned once

    NcclGradientSync(Nccl nccl, nint comm, int rank, int world, long bucketBytes, RendezvousSession session)
    {
        (this.nccl, this.comm, Rank, WorldSize, this.bucketBytes) = (nccl, comm, rank, world, bucketBytes);
        watchdog = new CollectiveWatchdog(rank, () => nccl.CommGetAsyncError(comm), nccl.ErrorString, () =>
        {
            if (this.comm != 0) nccl.CommAbort(this.comm);
            this.comm = 0;
        });
        liveness = new PeerLiveness(session, rank, watchdog.Fail);                    // a peer's death aborts this rank's collectives too
    }

    /// <summary>
    /// Loads NCCL, exchanges rank 0's unique id over <see cref="Rendezvous"/> and joins the communicator on CUDA device
    /// <paramref name="cudaDevice"/> (made the thread's current device first: ncclCommInitRank binds the current one).
    /// </summary>
    public static NcclGradientSync Create(DistributedEnvironment env, int cudaDevice, TimeSpan timeout, long bucketBytes = DefaultBucketBytes)
    {
        var nccl = Nccl.Load();
        var session = Rendezvous.OpenAsync(env, nccl.GetUniqueId, timeout).GetAwaiter().GetResult();
        try
        {
            CudaDriver.UsePrimaryContext(cudaDevice);
            return new NcclGradientSync(nccl, nccl.CommInitRank(env.WorldSize, session.Id, env.Rank), env.Rank, env.WorldSize, bucketBytes, session);
        }
        catch
        {
            session.Dispose();                                                          // the peers learn of it at once
            throw;
        }
    }

    /// <summary>
    /// This rank finished its part normally (the training loop returned): it tells its peers, so its exit is not taken for
    /// a failure, and <see cref="Dispose"/> destroys the communicator instead of aborting it.
    /// </summary>
    public void Goodbye()
    {
        finished = true;
        liveness.Goodbye();
    }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int WorldSize { get; }

    /// <inheritdoc/>
    public void AfterBackward(Tensor flatGrads)
    {
        var (ptr, type, size) = Check(flatGrads);
        var elementSize = ElementSize(flatGrads);
        // Buckets are aligned cuts of the whole buffer: without overlap with backward, slot boundaries buy nothing.
        if (plan is not { } p0 || p0.Size != size || p0.ElementSize != elementSize)
            plan = (size, elementSize, GradientBuckets.Plan([0], size, bucketBytes, elementSize));
        lock (watchdog.Gate)
        {
            var c = Comm();
            nccl.GroupStart();
            foreach (var b in plan.Value.Buckets)
            {
                var p = ptr + (nint)(b.Start * elementSize);
                nccl.AllReduce(p, p, b.Count, type, Nccl.ReduceOp.Sum, c);
            }
            nccl.GroupEnd();
        }
        flatGrads.div_(WorldSize);
        ThrowIfFailed();
    }

    /// <inheritdoc/>
    public void AverageMetric(Tensor scalar)
    {
        var (ptr, type, n) = Check(scalar);
        lock (watchdog.Gate) nccl.AllReduce(ptr, ptr, n, type, Nccl.ReduceOp.Sum, Comm());
        scalar.div_(WorldSize);
    }

    /// <inheritdoc/>
    public void BroadcastFromRank0(Tensor values)
    {
        var (ptr, type, n) = Check(values);
        lock (watchdog.Gate) nccl.Broadcast(ptr, ptr, n, type, 0, Comm());
        ThrowIfFailed();
    }

    /// <summary>Polls NCCL's asynchronous error now; throws when it or the watchdog found one (the communicator is then aborted).</summary>
    public void ThrowIfFailed()
    {
        watchdog.Check();
        watchdog.ThrowIfFailed();
    }

    /// <summary>The live communicator (call under the watchdog's gate); throws the watchdog's reason once it was aborted.</summary>
    nint Comm()
    {
        watchdog.ThrowIfFailed();
        return comm != 0 ? comm : throw new ObjectDisposedException(nameof(NcclGradientSync), "the NCCL communicator was destroyed");
    }

    static int ElementSize(Tensor t) => TensorMemory.ElementSize(t.dtype);

    (nint Ptr, Nccl.DataType Type, long Count) Check(Tensor t)
    {
        if (t.device_type != DeviceType.CUDA) throw new ArgumentException($"NCCL reduces CUDA tensors (got one on {t.device})");
        if (!t.is_contiguous()) throw new ArgumentException("NCCL needs a contiguous tensor");
        return (TensorMemory.DataPointer(t), Nccl.TypeOf(t.dtype), t.numel());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        liveness.Dispose();                                                             // without Goodbye: the peers fail at once
        watchdog.Dispose();
        lock (watchdog.Gate)
        {
            // After a failure collectives may be pending on a dead peer, and ncclCommDestroy would wait for them.
            if (comm != 0)
            {
                if (finished) nccl.CommDestroy(comm);
                else nccl.CommAbort(comm);
            }
            comm = 0;
        }
    }
}
