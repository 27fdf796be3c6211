using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// The order in which training examples are read: a fresh permutation per epoch, drawn from a generator
/// seeded with (seed, epoch), so the whole order is a function of (seed, epoch, position) — which is all a
/// checkpoint stores to resume exactly. Rank-aware: in each global batch of B·world examples, rank r reads
/// the r-th slice of B. The last partial global batch of an epoch is dropped.
/// </summary>
public sealed class BatchOrder : IDisposable
{
    readonly long count, seed;
    readonly int batch, rank, world;
    readonly Device device;
    Tensor? permutation;
    long permutationEpoch = -1;

    /// <summary>Orders <paramref name="count"/> examples in batches of <paramref name="batch"/> per rank.</summary>
    public BatchOrder(long count, int batch, long seed, Device device, int rank = 0, int world = 1)
    {
        if (batch <= 0) throw new ArgumentException($"batch size must be positive (got {batch})");
        if (world <= 0 || rank < 0 || rank >= world) throw new ArgumentException($"rank {rank} is outside world size {world}");
        if (count < (long)batch * world)
            throw new ArgumentException($"batch size {batch}{(world > 1 ? $" × {world} processes" : "")} exceeds the {count} training examples; use a smaller --batch");
        (this.count, this.batch, this.seed, this.device, this.rank, this.world) = (count, batch, seed, device, rank, world);
    }

    /// <summary>Full global batches per epoch.</summary>
    public long BatchesPerEpoch => count / ((long)batch * world);

    /// <summary>Epochs completed.</summary>
    public long Epoch { get; private set; }

    /// <summary>Batches read in the current epoch.</summary>
    public long Position { get; private set; }

    /// <summary>Moves to a saved (epoch, position).</summary>
    public void Restore(long epoch, long position)
    {
        if (epoch < 0 || position < 0 || position >= BatchesPerEpoch)
            throw new InvalidDataException($"data order state (epoch {epoch}, batch {position}) does not fit {BatchesPerEpoch} batches per epoch; the data or batch size changed since the checkpoint");
        (Epoch, Position) = (epoch, position);
    }

    /// <summary>The next batch's example indices [B] (int64, on the device), and advances.</summary>
    public Tensor Next()
    {
        if (permutationEpoch != Epoch)
        {
            permutation?.Dispose();
            using var g = new Generator((ulong)unchecked(seed * 1_000_003L + Epoch));
            using var perm = randperm(count, generator: g, dtype: ScalarType.Int64);
            permutation = perm.to(device).DetachFromDisposeScope();
            permutationEpoch = Epoch;
        }
        var start = (Position * world + rank) * batch;
        var idx = permutation!.narrow(0, start, batch);
        if (++Position == BatchesPerEpoch) { Position = 0; Epoch++; }
        return idx;
    }

    /// <inheritdoc/>
    public void Dispose() => permutation?.Dispose();
}
