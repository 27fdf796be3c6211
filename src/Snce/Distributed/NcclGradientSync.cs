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
/// FACTS.md). Not yet run on GPUs from this class: the device session tests it.
/// </summary>
public sealed class NcclGradientSync : IGradientSync, IDisposable
{
    /// <summary>Default bucket budget (PyTorch DDP's bucket_cap_mb default).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly Nccl nccl;
    readonly long bucketBytes;
    nint comm;
    (long Size, int ElementSize, IReadOnlyList<GradientBuckets.Bucket> Buckets)? plan;   // the same buffer every step: planned once

    NcclGradientSync(Nccl nccl, nint comm, int rank, int world, long bucketBytes) =>
        (this.nccl, this.comm, Rank, WorldSize, this.bucketBytes) = (nccl, comm, rank, world, bucketBytes);

    /// <summary>Loads NCCL, exchanges rank 0's unique id over <see cref="Rendezvous"/> and joins the communicator.</summary>
    public static NcclGradientSync Create(DistributedEnvironment env, TimeSpan timeout, long bucketBytes = DefaultBucketBytes)
    {
        var nccl = Nccl.Load();
        var id = Rendezvous.ExchangeAsync(env, nccl.GetUniqueId, timeout).GetAwaiter().GetResult();
        return new NcclGradientSync(nccl, nccl.CommInitRank(env.WorldSize, id, env.Rank), env.Rank, env.WorldSize, bucketBytes);
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
        nccl.GroupStart();
        foreach (var b in plan.Value.Buckets)
        {
            var p = ptr + (nint)(b.Start * elementSize);
            nccl.AllReduce(p, p, b.Count, type, Nccl.ReduceOp.Sum, comm);
        }
        nccl.GroupEnd();
        flatGrads.div_(WorldSize);
        ThrowIfPeerFailed();
    }

    /// <inheritdoc/>
    public void AverageMetric(Tensor scalar)
    {
        var (ptr, type, n) = Check(scalar);
        nccl.AllReduce(ptr, ptr, n, type, Nccl.ReduceOp.Sum, comm);
        scalar.div_(WorldSize);
    }

    /// <inheritdoc/>
    public void BroadcastFromRank0(Tensor values)
    {
        var (ptr, type, n) = Check(values);
        nccl.Broadcast(ptr, ptr, n, type, 0, comm);
        ThrowIfPeerFailed();
    }

    /// <summary>Polls NCCL's asynchronous error; on one, aborts the communicator (so no rank hangs) and throws.</summary>
    public void ThrowIfPeerFailed()
    {
        var e = nccl.CommGetAsyncError(comm);
        if (e is 0 or 7) return;  // ncclSuccess, ncclInProgress
        nccl.CommAbort(comm);
        comm = 0;
        throw new DistributedSetupException($"rank {Rank}: NCCL reported {nccl.ErrorString(e)} (ncclResult_t {e}); another rank probably failed, see its log");
    }

    static int ElementSize(Tensor t) => TensorMemory.ElementSize(t.dtype);

    (nint Ptr, Nccl.DataType Type, long Count) Check(Tensor t)
    {
        if (comm == 0) throw new ObjectDisposedException(nameof(NcclGradientSync), "the NCCL communicator was aborted or destroyed");
        if (t.device_type != DeviceType.CUDA) throw new ArgumentException($"NCCL reduces CUDA tensors (got one on {t.device})");
        if (!t.is_contiguous()) throw new ArgumentException("NCCL needs a contiguous tensor");
        return (TensorMemory.DataPointer(t), Nccl.TypeOf(t.dtype), t.numel());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (comm != 0) nccl.CommDestroy(comm);
        comm = 0;
    }
}
