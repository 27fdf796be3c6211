using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Keys and values of every layer for incremental (autoregressive) decoding, preallocated for the whole
/// sequence: per layer K and V [B, H, S_max, d_h]. <see cref="Length"/> slots are filled.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor[] keys, values;

    /// <summary>Allocates zeros for <paramref name="layers"/> layers.</summary>
    public KvCache(int layers, long batch, int heads, long maxSlots, int headDim, ScalarType dtype, Device device)
    {
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (var i = 0; i < layers; i++)
        {
            keys[i] = zeros([batch, heads, maxSlots, headDim], dtype: dtype, device: device);
            values[i] = zeros([batch, heads, maxSlots, headDim], dtype: dtype, device: device);
        }
        MaxSlots = maxSlots;
    }

    /// <summary>Slots the cache can hold.</summary>
    public long MaxSlots { get; }

    /// <summary>Which slots may be attended to [B, MaxSlots] (bool; padded caption slots may not), or null when all may. Owned by the cache.</summary>
    public Tensor? KeyMask { get; set; }

    /// <summary>Slots filled so far (the next write starts here).</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Writes k, v [B, H, n, d_h] of layer <paramref name="layer"/> at slots [Length, Length+n) and returns
    /// the views of all keys and values so far [B, H, Length+n, d_h]. <see cref="Advance"/> moves Length on after the last layer.
    /// </summary>
    public (Tensor Keys, Tensor Values) Write(int layer, Tensor k, Tensor v)
    {
        var n = k.shape[2];
        if (Length + n > MaxSlots) throw new InvalidOperationException($"KV cache full: {Length} + {n} > {MaxSlots} slots");
        keys[layer].narrow(2, Length, n).copy_(k);
        values[layer].narrow(2, Length, n).copy_(v);
        return (keys[layer].narrow(2, 0, Length + n), values[layer].narrow(2, 0, Length + n));
    }

    /// <summary>Marks <paramref name="n"/> more slots as filled (after every layer has written them).</summary>
    public void Advance(long n) => Length += n;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t.Dispose();
        KeyMask?.Dispose();
    }
}
