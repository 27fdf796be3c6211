using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// Where data-parallel training plugs in: called after every backward with the flat gradient buffer, which
/// a multi-GPU implementation all-reduces (sum, then ÷ world size) in one collective. Rank and world size
/// also decide which batches a process reads and who writes checkpoints and logs (rank 0).
/// </summary>
public interface IGradientSync
{
    /// <summary>This process's rank, 0..WorldSize−1.</summary>
    int Rank { get; }

    /// <summary>Number of processes.</summary>
    int WorldSize { get; }

    /// <summary>Makes <paramref name="flatGrads"/> the mean gradient over all processes (in place).</summary>
    void AfterBackward(Tensor flatGrads);

    /// <summary>Averages a device scalar metric over all processes (in place), before it is logged.</summary>
    void AverageMetric(Tensor scalar);

    /// <summary>Overwrites <paramref name="values"/> with rank 0's (in place), so every rank starts from the same weights.</summary>
    void BroadcastFromRank0(Tensor values);

    /// <summary>
    /// Throws when a collective has failed since the last call (a peer died, the communicator was aborted): the trainer
    /// calls it after each host read of a synchronized value, which an aborted collective leaves undefined.
    /// </summary>
    void ThrowIfFailed() { }
}

/// <summary>One process: nothing to synchronize.</summary>
public sealed class SingleProcess : IGradientSync
{
    /// <summary>The shared instance.</summary>
    public static readonly SingleProcess Instance = new();

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int WorldSize => 1;

    /// <inheritdoc/>
    public void AfterBackward(Tensor flatGrads) { }

    /// <inheritdoc/>
    public void AverageMetric(Tensor scalar) { }

    /// <inheritdoc/>
    public void BroadcastFromRank0(Tensor values) { }
}
