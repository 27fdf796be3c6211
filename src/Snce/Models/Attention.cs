using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// Multi-head self-attention with a fused q/k/v projection, 2-D rotary positions and
/// <c>scaled_dot_product_attention</c> (flash/efficient kernels on CUDA). Causal or bidirectional; with a
/// <see cref="KvCache"/> it attends to everything cached plus the new slots.
/// </summary>
public sealed class Attention : nn.Module
{
    readonly int heads, headDim;
    // Named as their state-dict keys.
    readonly Linear wqkv, wo;

    /// <summary>d → 3d (q, k, v) and d → d, no biases, N(0, std²) init.</summary>
    public Attention(TransformerConfig c, Device? device = null) : base(nameof(Attention))
    {
        (heads, headDim) = (c.Heads, c.HeadDim);
        wqkv = nn.Linear(c.Dim, 3L * c.Dim, hasBias: false, device: device);
        wo = nn.Linear(c.Dim, c.Dim, hasBias: false, device: device);
        using (no_grad())
        {
            nn.init.normal_(wqkv.weight, 0, c.InitStd);
            nn.init.normal_(wo.weight, 0, c.InitStd);
        }
        RegisterComponents();
    }

    /// <summary>
    /// x [B, S, d] at slots [start, start+S) → [B, S, d]. Without a cache, <paramref name="causal"/> picks a causal or a full mask.
    /// With a cache (causal decoding), keys/values of the new slots are appended and the queries attend to all
    /// earlier slots and causally among themselves.
    /// </summary>
    public Tensor Forward(Tensor x, Rotary2d rotary, bool causal, long start = 0, KvCache? cache = null, int layer = 0)
    {
        using var scope = NewDisposeScope();
        var (b, s, d) = (x.shape[0], x.shape[1], x.shape[2]);
        var qkv = wqkv.forward(x).view(b, s, 3, heads, headDim);                       // [B, S, 3, H, d_h]
        if (cache is null && Fused.BlockKernels.For(qkv) is { } launcher)
        {
            // One kernel each way on CUDA: rotary on q and k, and all three laid out [B, H, S, d_h] for attention.
            var (cos, sin) = rotary.Tables(x.device);
            if (start + s > rotary.Slots) throw new ArgumentException($"rotary positions {start}..{start + s} exceed the {rotary.Slots} slots");
            var (fq, fk, fv) = Fused.FusedBlockOps.RotaryQkv(qkv, cos, sin, start, launcher);
            var fy = nn.functional.scaled_dot_product_attention(fq, fk, fv, is_casual: causal);
            return wo.forward(fy.transpose(1, 2).reshape(b, s, d)).MoveToOuterDisposeScope();
        }
        var qk = rotary.Apply(qkv.narrow(2, 0, 2), start);                             // [B, S, 2, H, d_h]
        var q = qk.select(2, 0).transpose(1, 2);                                       // [B, H, S, d_h]
        var k = qk.select(2, 1).transpose(1, 2);
        var v = qkv.select(2, 2).transpose(1, 2);
        Tensor y;
        if (cache is null)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: causal);
        }
        else
        {
            if (!causal) throw new InvalidOperationException("a KV cache is only for causal decoding");
            if (start != cache.Length) throw new InvalidOperationException($"decoding slot {start} but the cache holds {cache.Length}");
            var (kAll, vAll) = cache.Write(layer, k, v);
            if (s == 1) y = nn.functional.scaled_dot_product_attention(q, kAll, vAll);          // one new slot sees everything before it
            else if (start == 0) y = nn.functional.scaled_dot_product_attention(q, kAll, vAll, is_casual: true);
            else
            {
                // Query i (slot start+i) sees slots ≤ start+i.
                var allowed = arange(start + s, device: x.device).unsqueeze(0) <= arange(start, start + s, device: x.device).unsqueeze(1);
                y = nn.functional.scaled_dot_product_attention(q, kAll, vAll, attn_mask: allowed);
            }
        }
        return wo.forward(y.transpose(1, 2).reshape(b, s, d)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { wqkv.Dispose(); wo.Dispose(); }
        base.Dispose(disposing);
    }
}
