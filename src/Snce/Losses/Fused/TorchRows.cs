using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// The row-wise step with libtorch ops, chunked over codes: pass 1 keeps online log-sum-exps of the logits and of the
/// target scores (and the q-weighted sums) per row, pass 2 recomputes each chunk and writes the gradient. Runs on any
/// device and dtype; it is the CPU path and the reference for the CUDA kernel (same statistics, same conventions).
/// Dense target scores are recomputed in pass 2 (one more target matmul) rather than kept.
/// </summary>
internal sealed class TorchRows : IRowKernel
{
    public static readonly TorchRows Instance = new();

    public string Name => "torch";

    public Tensor Run(RowBlock b)
    {
        var md = b.MathDtype;
        var L = b.Logits;
        var (r, k) = (L.shape[0], L.shape[1]);
        var dev = L.device;
        var chunk = Math.Max(1, Math.Min(b.CodeChunk, k));
        var invTau = 1.0 / b.Tau;
        var target = b.Target;
        if (target is RowTarget.TopOfScores top)
        {
            // The kernel selects in its first pass; here: a chunked top-k of the same scores, then as sparse targets.
            var (v, i) = NeighborTopK.Top(top.Raw, k, top.K, chunk);
            target = new RowTarget.Sparse(i, (v.to(md) * invTau).softmax(1));
        }
        var dense = target as RowTarget.Dense;

        var mL = full(r, double.NegativeInfinity, dtype: md, device: dev);
        var zL = zeros(r, dtype: md, device: dev);
        Tensor? mS = null, zS = null, qa = null, qb = null;
        if (dense is not null)
        {
            mS = full(r, double.NegativeInfinity, dtype: md, device: dev);
            zS = zeros(r, dtype: md, device: dev);
            qa = zeros(r, dtype: md, device: dev);
            qb = zeros(r, dtype: md, device: dev);
        }

        // Pass 1: online log-sum-exp over code chunks. m = running max, z = Σ exp(x − m), rescaled when m grows.
        for (long c0 = 0; c0 < k; c0 += chunk)
        {
            using var scope = NewDisposeScope();
            var len = Math.Min(chunk, k - c0);
            var l = L.narrow(1, c0, len).to(md);
            Advance(mL, zL, l, out _, out _);
            if (dense is not null)
            {
                var s = dense.Raw(c0, len).to(md) * invTau;
                Advance(mS!, zS!, s, out var e, out var f);
                qa!.mul_(f).add_((e * l).sum(1));
                qb!.mul_(f).add_((e * s).sum(1));
            }
        }
        var lse = mL + zL.log();

        // Target statistics: Σ q·l and H(q).
        var tok = b.Tokens.unsqueeze(1);
        var tokL = L.gather(1, tok).squeeze(1).to(md);
        Tensor ql, ent, lseS = lse;
        Tensor? sparseIdx = null, sparseL = null, sparseQ = null;
        switch (target)
        {
            case RowTarget.Dense:
                lseS = mS! + zS!.log();
                ql = qa! / zS!;
                ent = lseS - qb! / zS!;
                break;
            case RowTarget.Sparse sp:
                sparseIdx = sp.Index;
                sparseQ = sp.Q.to(md);
                sparseL = L.gather(1, sparseIdx).to(md); // gathered before pass 2 may overwrite the logits
                ql = (sparseQ * sparseL).sum(1);
                ent = -sparseQ.xlogy(sparseQ).sum(1);
                break;
            default:
                sparseIdx = tok;
                sparseQ = ones(r, 1, dtype: md, device: dev);
                sparseL = tokL.unsqueeze(1);
                ql = tokL;
                ent = zeros(r, dtype: md, device: dev);
                break;
        }
        var stats = stack([lse - ql, lse - tokL, ent, lse], 1);
        var unsupervised = b.Mask is null ? null : b.Mask.logical_not().unsqueeze(1);
        if (unsupervised is not null) stats = stats.masked_fill(unsupervised, 0);
        if (b.Grad is null) return stats;

        // Pass 2: gradient coef·(softmax(l) − q), chunk by chunk; the sparse targets' entries are set afterwards.
        var coef = b.Coef.to(md).unsqueeze(1);
        var lse1 = lse.unsqueeze(1);
        var lseS1 = lseS.unsqueeze(1);
        for (long c0 = 0; c0 < k; c0 += chunk)
        {
            using var scope = NewDisposeScope();
            var len = Math.Min(chunk, k - c0);
            var p = (L.narrow(1, c0, len).to(md) - lse1).exp_();
            if (dense is not null) p.sub_((dense.Raw(c0, len).to(md) * invTau - lseS1).exp_());
            var g = p.mul_(coef);
            if (unsupervised is not null) g = g.masked_fill(unsupervised, 0);
            b.Grad.narrow(1, c0, len).copy_(g);
        }
        if (sparseIdx is not null)
        {
            var g = ((sparseL! - lse1).exp() - sparseQ!) * coef;
            if (unsupervised is not null) g = g.masked_fill(unsupervised, 0);
            b.Grad.scatter_(1, sparseIdx, g.to(b.Grad.dtype));
        }
        return stats;
    }

    /// <summary>
    /// Online log-sum-exp step on chunk <paramref name="x"/> [R, len], in place: m' = max(m, max x),
    /// z' = z·exp(m − m') + Σ exp(x − m'). Also gives e = exp(x − m') and the rescale factor f = exp(m − m').
    /// A row whose values are all −inf so far keeps m = −inf, z = 0 (no inf − inf).
    /// </summary>
    static void Advance(Tensor m, Tensor z, Tensor x, out Tensor e, out Tensor f)
    {
        var mNew = maximum(m, x.amax([1]));
        var shift = mNew.masked_fill(mNew.isneginf(), 0);
        f = (m - shift).exp();
        e = (x - shift.unsqueeze(1)).exp();
        z.mul_(f).add_(e.sum(1));
        m.copy_(mNew);
    }
}
