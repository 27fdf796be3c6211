using Snce.Losses;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Snce.Tokenizer;

/// <summary>
/// IBQ's straight-through estimator (Shi et al. 2024, "Taming Scalable Visual Tokenizer for Autoregressive Image
/// Generation", index backpropagation) and its code-entropy regularizer, with row-blocked passes so that
/// K = 262,144 codes never need an [N, K] matrix in memory. With logits s = −d(z, C)/τ and p = softmax(s) over ALL codes:
///   output 0:  q = (onehot(idx) + p − sg(p)) @ C, whose value is C[idx];
///   output 1:  E = mean_i H(p_i) − H(p̄),  p̄ = mean_i p_i   (confident per-token choices, diverse usage overall;
///              the entropy loss of MAGVIT-v2 / IBQ), computed only when <c>withEntropy</c>.
/// Backward, with g = ∂L/∂q, G = g Cᵀ and e = ∂L/∂E:
///   ∂L/∂s_i = p_i ⊙ (G_i − ⟨p_i, G_i⟩) + (e/N)·[p_i ⊙ (log p̄ − ⟨p_i, log p̄⟩) − p_i ⊙ (log p_i + H(p_i))],
///   ∂L/∂C   = onehot(idx)ᵀ g + (∂L/∂s through s), ∂L/∂z = (∂L/∂s through s), differentiated per metric below.
/// Memory per block: a few × rows × K floats; p is recomputed in the backward (one extra distance matmul per block).
/// </summary>
/// <remarks>
/// Checked against the dense autograd form for every metric by IndexBackpropTests. Inputs: z [N, D], codes [K, D]
/// (the effective codes, already normalized for cosine), idx [N] int64, then the <see cref="Metric"/>, τ, rows per
/// block and whether to compute E. The returned gradients are detached from every dispose scope (the backward may
/// run on an autograd worker thread) and released at the next forward call or by <see cref="ReleaseGradients"/>.
/// </remarks>
internal sealed class IndexBackpropFunction : MultiTensorFunction<IndexBackpropFunction>
{
    static readonly List<Tensor> Pending = [];
    const double LogFloor = 1e-30;

    public override string Name => "IndexBackprop";

    /// <summary>Disposes the gradient tensors handed to autograd by earlier backward calls (safe once those backward passes finished).</summary>
    public static void ReleaseGradients()
    {
        lock (Pending)
        {
            foreach (var t in Pending) t.Dispose();
            Pending.Clear();
        }
    }

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        ReleaseGradients();
        var (z, codes, idx) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var (metric, tau, rows, withEntropy) = ((Metric)vars[3], (double)vars[4], (long)vars[5], (bool)vars[6]);
        Tensor entropy, meanP;
        using (var scope = NewDisposeScope())
        {
            meanP = zeros(codes.shape[0], dtype: z.dtype, device: z.device);
            entropy = zeros([], dtype: z.dtype, device: z.device);
            if (withEntropy)
            {
                var n = z.shape[0];
                var sampleEntropy = zeros([], dtype: z.dtype, device: z.device);
                for (long r0 = 0; r0 < n; r0 += rows)
                {
                    using var block = NewDisposeScope();
                    var logp = metric.Distance(z.narrow(0, r0, Math.Min(rows, n - r0)), codes).div_(-tau).log_softmax(1);
                    var p = logp.exp();
                    meanP.add_(p.sum(0L, keepdim: false));
                    sampleEntropy.sub_((p * logp).sum());
                }
                meanP.div_(n);
                entropy.copy_(sampleEntropy.div(n) + (meanP * meanP.clamp_min(LogFloor).log()).sum());
            }
            meanP.MoveToOuterDisposeScope();
            entropy.MoveToOuterDisposeScope();
        }
        // Undefined output gradients stay undefined: materializing them would use TorchSharp's cached output
        // templates, which the caller's dispose scope may already have freed.
        ctx.set_materialize_grads(false);
        ctx.save_for_backward([z, codes, idx, meanP]);
        ctx.save_data("metric", metric);
        ctx.save_data("tau", tau);
        ctx.save_data("rows", rows);
        ctx.save_data("entropy", withEntropy);
        return [codes.index_select(0, idx), entropy];
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grads)
    {
        Tensor gz, gc;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var saved = ctx.get_saved_variables();
            var (z, codes, idx, meanP) = (saved[0], saved[1], saved[2], saved[3]);
            var metric = (Metric)ctx.get_data("metric");
            var tau = (double)ctx.get_data("tau");
            var rows = (long)ctx.get_data("rows");
            static bool Defined(Tensor? t) => t is not null && !t.IsInvalid;
            var withEntropy = (bool)ctx.get_data("entropy") && grads.Count > 1 && Defined(grads[1]);
            var grad = Defined(grads[0]) ? grads[0] : zeros_like(z);
            var n = z.shape[0];
            var entropyGrad = withEntropy ? grads[1] / n : null;                 // e/N, a scalar tensor
            var logMeanP = withEntropy ? meanP.clamp_min(LogFloor).log() : null;
            gz = zeros_like(z);
            gc = zeros_like(codes).index_add_(0, idx, grad, 1);                   // the one-hot (hard) path
            var name = metric.Name;
            var cosine = name == Metric.Cosine.Name;
            var zs = cosine ? nn.functional.normalize(z, p: 2, dim: 1, eps: 1e-12) : z;
            var cs = cosine ? nn.functional.normalize(codes, p: 2, dim: 1, eps: 1e-12) : codes;
            var gcs = cosine ? zeros_like(codes) : gc;                           // cosine: accumulate ∂L/∂ĉ, project at the end
            for (long r0 = 0; r0 < n; r0 += rows)
            {
                using var block = NewDisposeScope();
                var len = Math.Min(rows, n - r0);
                var zr = z.narrow(0, r0, len);
                var logp = metric.Distance(zr, codes).div_(-tau).log_softmax(1); // [r, K]
                var p = logp.exp();
                var big = grad.narrow(0, r0, len).matmul(codes.t());              // G = g Cᵀ  [r, K]
                var ds = big.sub_((p * big).sum(1, keepdim: true)).mul_(p);       // ∂L/∂s, IBQ part
                if (withEntropy)
                {
                    var h = (p * logp).sum(1, keepdim: true).neg_();              // H(p_i)  [r, 1]
                    var toMean = logMeanP!.unsqueeze(0) - (p * logMeanP).sum(1, keepdim: true);
                    ds.add_((toMean.sub_(logp).sub_(h)).mul_(p).mul_(entropyGrad!));
                }
                ds.div_(tau);                                                     // ∂L/∂(−d)
                switch (name)
                {
                    case "dot": // −d = z·c
                        gz.narrow(0, r0, len).copy_(ds.matmul(codes));
                        gcs.add_(ds.t().matmul(zr));
                        break;
                    case "l2": // −d = 2 z·c − ‖z‖² − ‖c‖²
                        gz.narrow(0, r0, len).copy_(ds.matmul(codes).mul_(2).sub_(zr * ds.sum(1, keepdim: true).mul_(2)));
                        gcs.add_(ds.t().matmul(zr).mul_(2).sub_(codes * ds.sum(0L, keepdim: false).unsqueeze(1).mul_(2)));
                        break;
                    case "cosine": // −d = ẑ·ĉ;  ∂ẑ → ∂z through the normalization: (I − ẑẑᵀ)/‖z‖
                        var zsr = zs.narrow(0, r0, len);
                        var dzs = ds.matmul(cs);
                        var norm = zr.norm(1, keepdim: true).clamp_min(1e-12);
                        gz.narrow(0, r0, len).copy_(dzs.sub_(zsr * (zsr * dzs).sum(1, keepdim: true)).div_(norm));
                        gcs.add_(ds.t().matmul(zsr));
                        break;
                    default:
                        throw new NotSupportedException($"index backpropagation has no gradient for metric '{name}'");
                }
            }
            if (cosine)
            {
                var norm = codes.norm(1, keepdim: true).clamp_min(1e-12);
                gc.add_(gcs.sub_(cs * (cs * gcs).sum(1, keepdim: true)).div_(norm));
            }
            gz.DetachFromDisposeScope();
            gc.DetachFromDisposeScope();
        }
        lock (Pending) { Pending.Add(gz); Pending.Add(gc); }
        return [gz, gc, null!, null!, null!, null!, null!];
    }
}
