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
    readonly double dropout;
    // Named as their state-dict keys.
    readonly Linear wqkv, wo;

    /// <summary>d → 3d (q, k, v) and d → d, no biases, N(0, std²) init.</summary>
    public Attention(TransformerConfig c, Device? device = null) : base(nameof(Attention))
    {
        (heads, headDim, dropout) = (c.Heads, c.HeadDim, c.Dropout);
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
    /// x [B, S, d] at slots [start, start+S) → [B, S, d]. In training mode (and only without a cache) the attention
    /// weights are dropped with the config's dropout probability, drawn from the device's default generator. Without a cache, <paramref name="causal"/> picks a causal or a full mask.
    /// With a cache (causal decoding), keys/values of the new slots are appended and the queries attend to all
    /// earlier slots and causally among themselves. <paramref name="keyMask"/> [B, S] (bool, uncached) or the cache's
    /// <see cref="KvCache.KeyMask"/> removes slots (padded caption slots) as keys; every slot still sees itself.
    /// </summary>
    public Tensor Forward(Tensor x, Rotary2d rotary, bool causal, long start = 0, KvCache? cache = null, int layer = 0, Tensor? keyMask = null)
    {
        using var scope = NewDisposeScope();
        var (b, s, d) = (x.shape[0], x.shape[1], x.shape[2]);
        var qkv = wqkv.forward(x).view(b, s, 3, heads, headDim);                       // [B, S, 3, H, d_h]
        Tensor q, k, v;                                                                 // [B, H, S, d_h]
        if (cache is null && Fused.BlockKernels.For(qkv) is { } launcher)
        {
            // One kernel each way on CUDA: rotary on q and k, and all three laid out [B, H, S, d_h] for attention.
            var (cos, sin) = rotary.Tables(x.device);
            if (start + s > rotary.Slots) throw new ArgumentException($"rotary positions {start}..{start + s} exceed the {rotary.Slots} slots");
            (q, k, v) = Fused.FusedBlockOps.RotaryQkv(qkv, cos, sin, start, launcher);
        }
        else
        {
            var qk = rotary.Apply(qkv.narrow(2, 0, 2), start);                         // [B, S, 2, H, d_h]
            q = qk.select(2, 0).transpose(1, 2);
            k = qk.select(2, 1).transpose(1, 2);
            v = qkv.select(2, 2).transpose(1, 2);
        }
        Tensor y;
        if (cache is null && keyMask is not null)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: Allowed(keyMask, 0, s, causal));
        }
        else if (cache is null)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, p: training ? dropout : 0, is_casual: causal);
        }
        else if (cache.KeyMask is { } cachedMask)
        {
            if (start != cache.Length) throw new InvalidOperationException($"decoding slot {start} but the cache holds {cache.Length}");
            var (kAll, vAll) = cache.Write(layer, k, v);
            y = nn.functional.scaled_dot_product_attention(q, kAll, vAll, attn_mask: Allowed(cachedMask.narrow(1, 0, start + s), start, s, causal: true));
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

    /// <summary>
    /// [B, 1, S, start+S] bool: query slot start+i may see key slot j when the key is not masked and (causal) j ≤ start+i;
    /// a query always sees itself, so a padded slot's row stays finite.
    /// </summary>
    static Tensor Allowed(Tensor keyMask, long start, long s, bool causal)
    {
        var total = keyMask.shape[1];
        var qPos = arange(start, start + s, device: keyMask.device).unsqueeze(1);                  // [S, 1]
        var kPos = arange(total, device: keyMask.device).unsqueeze(0);                             // [1, total]
        var allowed = keyMask.unsqueeze(1);                                                        // [B, 1, total]
        if (causal) allowed = allowed.logical_and(kPos <= qPos);                                   // [B, S, total]
        return allowed.logical_or(kPos == qPos).unsqueeze(1);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { wqkv.Dispose(); wo.Dispose(); }
        base.Dispose(disposing);
    }
}
