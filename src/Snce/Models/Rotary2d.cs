using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Axial 2-D rotary position embedding (RoPE, Su et al. 2021; 2-D as in LlamaGen and EVA-02): of each head's
/// d_h dims, the first half rotates with the token's grid row and the second half with its column, each
/// with frequencies base^(−i/(d_h/4)), i &lt; d_h/4. Prefix slots (the condition) get angle 0 (identity).
/// </summary>
/// <remarks>
/// Why rotary and 2-D: attention then depends on relative grid offsets, which is what image tokens share
/// across positions, and no position table has to be learned or resized. The tables are kept in fp32 on
/// each device that asks (not as module buffers: <c>module.bfloat16()</c> would round the angles).
/// Rotation uses the "rotate half" layout: pair (x_i, x_{i+d_h/2}).
/// </remarks>
public sealed class Rotary2d : IDisposable
{
    readonly int prefix, gridHeight, gridWidth, headDim;
    readonly double ropeBase;
    readonly Dictionary<string, (Tensor Cos, Tensor Sin)> tables = [];

    /// <summary>Tables for <paramref name="prefix"/> condition slots followed by an H×W grid in raster order.</summary>
    public Rotary2d(int prefix, int gridHeight, int gridWidth, int headDim, double ropeBase)
    {
        if (headDim % 4 != 0) throw new ArgumentException($"head dim {headDim} must be a multiple of 4 for 2-D rotary positions");
        (this.prefix, this.gridHeight, this.gridWidth, this.headDim, this.ropeBase) = (prefix, gridHeight, gridWidth, headDim, ropeBase);
    }

    /// <summary>Slots covered: prefix + H·W.</summary>
    public int Slots => prefix + gridHeight * gridWidth;

    /// <summary>cos and sin [slots, d_h/2] (fp32) on <paramref name="device"/>, built once per device.</summary>
    public (Tensor Cos, Tensor Sin) Tables(Device device)
    {
        var key = device.ToString();
        if (tables.TryGetValue(key, out var t)) return t;
        using var scope = NewDisposeScope();
        var quarter = headDim / 4;
        var freqs = exp(arange(quarter, dtype: ScalarType.Float64) * (-Math.Log(ropeBase) / quarter)); // [d_h/4]
        var cell = arange(gridHeight * gridWidth, dtype: ScalarType.Int64);
        var rows = cell.div(gridWidth, RoundingMode.floor).to_type(ScalarType.Float64);
        var cols = (cell % gridWidth).to_type(ScalarType.Float64);
        var angles = cat([rows.outer(freqs), cols.outer(freqs)], 1);                             // [T, d_h/2]
        angles = cat([zeros(prefix, headDim / 2, dtype: ScalarType.Float64), angles], 0);          // [P+T, d_h/2]
        var cos = angles.cos().to(ScalarType.Float32, device).DetachFromDisposeScope();
        var sin = angles.sin().to(ScalarType.Float32, device).DetachFromDisposeScope();
        tables[key] = (cos, sin);
        return (cos, sin);
    }

    /// <summary>
    /// Rotates x [B, S, G, H, d_h] (G = q and k stacked, or any group) for slots [start, start+S); math in fp32,
    /// result in x's dtype, contiguous.
    /// </summary>
    public Tensor Apply(Tensor x, long start)
    {
        using var scope = NewDisposeScope();
        var s = x.shape[1];
        if (start + s > Slots) throw new ArgumentException($"rotary positions {start}..{start + s} exceed the {Slots} slots (prefix {prefix} + grid {gridHeight}x{gridWidth})");
        var (cosAll, sinAll) = Tables(x.device);
        var cos = cosAll.narrow(0, start, s).view(s, 1, 1, headDim / 2);
        var sin = sinAll.narrow(0, start, s).view(s, 1, 1, headDim / 2);
        var xf = x.to_type(ScalarType.Float32);
        var x1 = xf.narrow(-1, 0, headDim / 2);
        var x2 = xf.narrow(-1, headDim / 2, headDim / 2);
        var y = cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1);
        return y.to_type(x.dtype).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (c, s) in tables.Values) { c.Dispose(); s.Dispose(); }
        tables.Clear();
    }
}
