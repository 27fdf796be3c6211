using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Snce.Native;

/// <summary>
/// The NCCL calls data-parallel training needs, bound at run time from the system's libnccl.so.2 (TorchSharp
/// ships no NCCL bindings). Collectives take device pointers (<see cref="Cuda.TensorMemory.DataPointer"/>) and a
/// CUDA stream (0: libtorch's default stream, which TorchSharp's ops use). Reference: NCCL API,
/// https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/api.html (nccl.h of 2.28 for the enum values).
/// </summary>
public sealed unsafe class Nccl
{
    /// <summary>The library's soname.</summary>
    public const string Library = "libnccl.so.2";

    /// <summary>Bytes of an ncclUniqueId.</summary>
    public const int UniqueIdBytes = 128;

#pragma warning disable CS1591 // members named and numbered as in nccl.h
    /// <summary>ncclDataType_t.</summary>
    public enum DataType { Int8 = 0, UInt8 = 1, Int32 = 2, UInt32 = 3, Int64 = 4, UInt64 = 5, Float16 = 6, Float32 = 7, Float64 = 8, BFloat16 = 9 }

    /// <summary>ncclRedOp_t (the built-in ones).</summary>
    public enum ReduceOp { Sum = 0, Prod = 1, Max = 2, Min = 3, Avg = 4 }
#pragma warning restore CS1591

    /// <summary>ncclUniqueId, passed by value to ncclCommInitRank.</summary>
    [StructLayout(LayoutKind.Sequential, Size = UniqueIdBytes)]
    public struct UniqueId { fixed byte bytes[UniqueIdBytes]; }

    readonly delegate* unmanaged<int*, int> getVersion;
    readonly delegate* unmanaged<UniqueId*, int> getUniqueId;
    readonly delegate* unmanaged<nint*, int, UniqueId, int, int> commInitRank;
    readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> allReduce;
    readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> broadcast;
    readonly delegate* unmanaged<int> groupStart, groupEnd;
    readonly delegate* unmanaged<nint, int> commAbort, commDestroy;
    readonly delegate* unmanaged<nint, int*, int> commGetAsyncError;
    readonly delegate* unmanaged<int, nint> getErrorString;

    Nccl(nint h, string path)
    {
        nint F(string name) => NativeLibrary.TryGetExport(h, name, out var f) ? f
            : throw new SnceSetupException($"{path} has no export {name}; install NCCL 2.19 or newer (apt install libnccl2)");
        getVersion = (delegate* unmanaged<int*, int>)F("ncclGetVersion");
        getUniqueId = (delegate* unmanaged<UniqueId*, int>)F("ncclGetUniqueId");
        commInitRank = (delegate* unmanaged<nint*, int, UniqueId, int, int>)F("ncclCommInitRank");
        allReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)F("ncclAllReduce");
        broadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)F("ncclBroadcast");
        groupStart = (delegate* unmanaged<int>)F("ncclGroupStart");
        groupEnd = (delegate* unmanaged<int>)F("ncclGroupEnd");
        commAbort = (delegate* unmanaged<nint, int>)F("ncclCommAbort");
        commDestroy = (delegate* unmanaged<nint, int>)F("ncclCommDestroy");
        commGetAsyncError = (delegate* unmanaged<nint, int*, int>)F("ncclCommGetAsyncError");
        getErrorString = (delegate* unmanaged<int, nint>)F("ncclGetErrorString");
    }

    /// <summary>Loads libnccl.so.2 (or <paramref name="path"/>); throws <see cref="SnceSetupException"/> saying how to install it.</summary>
    public static Nccl Load(string path = Library)
    {
        if (!NativeLibrary.TryLoad(path, out var h))
            throw new SnceSetupException($"{path} could not be loaded, and multi-GPU training needs NCCL: install it (apt install libnccl2, "
                + "or pip's nvidia-nccl-cu12 and put its lib folder on LD_LIBRARY_PATH), or train on one GPU without --gpus/WORLD_SIZE");
        return new Nccl(h, path);
    }

    /// <summary>NCCL's version code (e.g. 22805 for 2.28.5).</summary>
    public int Version()
    {
        int v;
        Check(getVersion(&v), "ncclGetVersion");
        return v;
    }

    /// <summary>A fresh unique id (rank 0 makes it; <see cref="Snce.Distributed.Rendezvous"/> hands it to the others).</summary>
    public byte[] GetUniqueId()
    {
        UniqueId id;
        Check(getUniqueId(&id), "ncclGetUniqueId");
        return new ReadOnlySpan<byte>(&id, UniqueIdBytes).ToArray();
    }

    /// <summary>Joins the communicator of <paramref name="world"/> ranks (blocks until all have called it); returns its handle.</summary>
    public nint CommInitRank(int world, byte[] uniqueId, int rank)
    {
        if (uniqueId.Length != UniqueIdBytes) throw new ArgumentException($"an NCCL unique id is {UniqueIdBytes} bytes (got {uniqueId.Length})", nameof(uniqueId));
        UniqueId id;
        uniqueId.CopyTo(new Span<byte>(&id, UniqueIdBytes));
        nint comm;
        Check(commInitRank(&comm, world, id, rank), $"ncclCommInitRank(rank {rank} of {world})");
        return comm;
    }

    /// <summary>ncclAllReduce of <paramref name="count"/> elements (in place when the pointers are equal).</summary>
    public void AllReduce(nint send, nint recv, long count, DataType type, ReduceOp op, nint comm, nint stream = 0) =>
        Check(allReduce(send, recv, (nuint)count, (int)type, (int)op, comm, stream), "ncclAllReduce");

    /// <summary>ncclBroadcast of <paramref name="count"/> elements from <paramref name="root"/>.</summary>
    public void Broadcast(nint send, nint recv, long count, DataType type, int root, nint comm, nint stream = 0) =>
        Check(broadcast(send, recv, (nuint)count, (int)type, root, comm, stream), "ncclBroadcast");

    /// <summary>ncclGroupStart: collectives until <see cref="GroupEnd"/> are fused into one launch.</summary>
    public void GroupStart() => Check(groupStart(), "ncclGroupStart");

    /// <summary>ncclGroupEnd.</summary>
    public void GroupEnd() => Check(groupEnd(), "ncclGroupEnd");

    /// <summary>The communicator's asynchronous error (0 = none; 7 = still in progress).</summary>
    public int CommGetAsyncError(nint comm)
    {
        int e;
        Check(commGetAsyncError(comm, &e), "ncclCommGetAsyncError");
        return e;
    }

    /// <summary>ncclCommAbort: frees the communicator, cancelling its pending operations (after a peer failed).</summary>
    public void CommAbort(nint comm) => Check(commAbort(comm), "ncclCommAbort");

    /// <summary>ncclCommDestroy: frees the communicator after its operations finished.</summary>
    public void CommDestroy(nint comm) => Check(commDestroy(comm), "ncclCommDestroy");

    /// <summary>ncclGetErrorString.</summary>
    public string ErrorString(int result) => Marshal.PtrToStringUTF8(getErrorString(result)) ?? $"NCCL error {result}";

    void Check(int result, string call)
    {
        if (result != 0) throw new Snce.Distributed.DistributedSetupException($"{call} failed: {ErrorString(result)} (ncclResult_t {result}); run with NCCL_DEBUG=WARN for NCCL's own log");
    }

    /// <summary>The NCCL type of a tensor dtype; throws naming the dtype and the ones NCCL reduces.</summary>
    public static DataType TypeOf(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => DataType.Float32,
        ScalarType.BFloat16 => DataType.BFloat16,
        ScalarType.Float16 => DataType.Float16,
        ScalarType.Float64 => DataType.Float64,
        ScalarType.Int64 => DataType.Int64,
        ScalarType.Int32 => DataType.Int32,
        ScalarType.Int8 => DataType.Int8,
        ScalarType.Byte => DataType.UInt8,
        _ => throw new NotSupportedException($"NCCL has no type for {dtype}; use Float32, BFloat16, Float16, Float64, Int64, Int32, Int8 or Byte"),
    };
}
