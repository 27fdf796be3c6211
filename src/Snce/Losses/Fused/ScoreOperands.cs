using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// The target scores s_ik = −d(z_i, c_k)/τ as one matmul, shifted per row so that they stay small:
/// raw = A·Bᵀ with s = raw/τ + const_i (a per-row constant cancels in q = softmax(s) and in H(q)).
/// </summary>
/// <remarks>
/// Same distances as <see cref="Metric.Distance"/> (the tests check q against it), written in a matmul-friendly form:
/// <list type="bullet">
/// <item>l2: A = [2z, −1, −1, −o], B = [c, ‖c‖²_hi, ‖c‖²_lo, 1], raw = 2z·c − ‖c‖² − o (the −‖z‖² term is per-row);</item>
/// <item>dot: A = [z, −o], B = [c, 1], raw = z·c − o;  cosine: the same on L2-normalized z and c;</item>
/// </list>
/// with o_i = the raw score of the row's own token (its nearest code), computed in fp32. The shift is inside the
/// matmul's fp32 accumulation, so a bf16 output rounds values near 0 (the codes that matter) instead of values of
/// size ‖z‖‖c‖/τ; ‖c‖² is split into two bf16 parts for the same reason. Columns are zero-padded to a multiple of 8.
/// </remarks>
internal sealed class ScoreOperands
{
    const double NormalizeEps = 1e-12; // as Metric.Cosine

    /// <summary>[N, Dp] per-row operand.</summary>
    public Tensor Rows { get; }
    /// <summary>[K, Dp] per-code operand.</summary>
    public Tensor Codes { get; }

    ScoreOperands(Tensor rows, Tensor codes) => (Rows, Codes) = (rows, codes);

    /// <summary>Raw scores of rows [r0, r0 + rows) against codes [c0, c0 + len): [rows, len] in the compute dtype.</summary>
    public Tensor Raw(long r0, long rows, long c0, long len) => Rows.narrow(0, r0, rows).mm(Codes.narrow(0, c0, len).t());

    /// <summary>Codes per step of the [K, Dp] operand's construction: its fp32 temporaries stay within a few MiB per step.</summary>
    const long CodeStep = 16384;

    /// <summary>
    /// Builds the operands (no autograd) in <paramref name="dtype"/>; intermediate math in fp32 (fp64 for fp64). The
    /// [K, Dp] code operand is written in place, <see cref="CodeStep"/> codes at a time, so that no [K, D]-sized fp32
    /// temporaries exist (at K = 262,144 and D = 256 they came to about 1.2 GB, kept by the caching allocator).
    /// </summary>
    public static ScoreOperands Build(Tensor anchors, Tensor codebook, Tensor tokens, Metric metric, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var wd = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var (n, d) = (anchors.shape[0], anchors.shape[1]);
        var k = codebook.shape[0];
        var l2 = metric.Name switch
        {
            "l2" => true,
            "dot" or "cosine" => false,
            _ => throw new ArgumentException($"the fused loss has no matmul form for metric '{metric.Name}'; it supports {Metric.Allowed}"),
        };
        var extra = l2 ? 3 : 1;
        var dp = (d + extra + 7) / 8 * 8;   // zero-padded to a multiple of 8

        // Per-code operand B = [c, ‖c‖²_hi, ‖c‖²_lo, 1] (l2) or [c, 1] (dot, cosine on normalized c), rounded once to dtype.
        var codes = zeros(k, dp, dtype: dtype, device: codebook.device);
        codes.narrow(1, d + extra - 1, 1).fill_(1);
        for (long c0 = 0; c0 < k; c0 += CodeStep)
        {
            using var step = NewDisposeScope();
            var len = Math.Min(CodeStep, k - c0);
            var c = Prepare(codebook.detach().narrow(0, c0, len).to(wd), metric);
            var block = codes.narrow(0, c0, len);
            block.narrow(1, 0, d).copy_(c);
            if (!l2) continue;
            var (hi, lo) = SplitNorms(c, dtype, wd);
            block.narrow(1, d, 1).copy_(hi.unsqueeze(1));
            block.narrow(1, d + 1, 1).copy_(lo.unsqueeze(1));
        }

        // Per-row operand A = [2z, −1, −1, −o] (l2) or [z, −o], with o the raw score of the row's own token ([N]-sized).
        var z = Prepare(anchors.detach().to(wd), metric);
        var ct = Prepare(codebook.detach().index_select(0, tokens).to(wd), metric);
        Tensor a;
        if (l2)
        {
            // ‖c‖² of the codes as the matmul sees them (rounded to the compute dtype), so that with bf16 operands
            // 2z·c − ‖c‖² is still −‖z − c‖² + ‖z‖² for the rounded vectors; o uses the same hi + lo split.
            var (hi, lo) = SplitNorms(ct, dtype, wd);
            var o = 2 * (z * ct).sum(1) - (hi + lo);
            var minusOne = full(n, 1, -1.0, dtype: wd, device: z.device);
            a = cat([2 * z, minusOne, minusOne, -o.unsqueeze(1)], 1);
        }
        else
        {
            var o = (z * ct).sum(1);
            a = cat([z, -o.unsqueeze(1)], 1);
        }
        if (dp > a.shape[1]) a = cat([a, zeros(n, dp - a.shape[1], dtype: wd, device: a.device)], 1);
        return new ScoreOperands(a.to(dtype).contiguous().MoveToOuterDisposeScope(), codes.MoveToOuterDisposeScope());
    }

    /// <summary>L2-normalized rows for cosine (as <see cref="Metric.Cosine"/>), the vectors themselves otherwise.</summary>
    static Tensor Prepare(Tensor v, Metric metric) =>
        metric.Name == "cosine" ? nn.functional.normalize(v, p: 2, dim: 1, eps: NormalizeEps) : v;

    /// <summary>‖c‖² of the rows rounded to <paramref name="dtype"/>, split into a part exact in dtype and the rest (both in <paramref name="wd"/>).</summary>
    static (Tensor Hi, Tensor Lo) SplitNorms(Tensor c, ScalarType dtype, ScalarType wd)
    {
        var cn = c.to(dtype).to(wd).pow(2).sum(1);
        var hi = cn.to(dtype).to(wd);
        return (hi, cn - hi);
    }
}

/// <summary>The k nearest codes per row from the score operands, found chunk by chunk over the whole codebook.</summary>
internal static class NeighborTopK
{
    /// <summary>
    /// Indices [rows, k] (int64) of the k largest scores of rows [r0, r0 + rows) and their renormalized target
    /// probabilities q = softmax(s_topk) [rows, k] in <paramref name="mathDtype"/>.
    /// </summary>
    public static (Tensor Index, Tensor Q) Select(ScoreOperands ops, long r0, long rows, int k, double tau, long codeChunk, ScalarType mathDtype)
    {
        var (vals, idx) = Top(ops.Rows.narrow(0, r0, rows), ops.Codes, k, codeChunk);
        var q = (vals.to(mathDtype) * (1.0 / tau)).softmax(1);
        return (idx.contiguous(), q.contiguous());
    }

    /// <summary>
    /// The k largest raw scores of <paramref name="rowOperand"/> [rows, Dp] against <paramref name="codes"/> [K, Dp]
    /// and their code indices (int64), each [rows, k], with a running top-k merge over chunks of <paramref name="codeChunk"/> codes.
    /// </summary>
    public static (Tensor Values, Tensor Index) Top(Tensor rowOperand, Tensor codes, int k, long codeChunk) =>
        Top((c0, len) => rowOperand.mm(codes.narrow(0, c0, len).t()), codes.shape[0], k, codeChunk);

    /// <summary>The k largest of the raw scores <paramref name="raw"/>(c0, len) over <paramref name="numCodes"/> codes, chunk by chunk.</summary>
    public static (Tensor Values, Tensor Index) Top(Func<long, long, Tensor> raw, long numCodes, int k, long codeChunk)
    {
        var kk = numCodes;
        Tensor? vals = null, idx = null;
        for (long c0 = 0; c0 < kk; c0 += codeChunk)
        {
            using var scope = NewDisposeScope(); // one chunk of scores alive at a time
            var len = Math.Min(codeChunk, kk - c0);
            var (v, i) = raw(c0, len).topk((int)Math.Min(k, len), dim: 1);
            i = i + c0;
            if (vals is not null)
            {
                var allV = cat([vals, v], 1);
                var allI = cat([idx!, i], 1);
                var (v2, j) = allV.topk((int)Math.Min(k, allV.shape[1]), dim: 1);
                (v, i) = (v2, allI.gather(1, j));
                vals.Dispose();
                idx!.Dispose();
            }
            vals = v.MoveToOuterDisposeScope();
            idx = i.MoveToOuterDisposeScope();
        }
        return (vals!, idx!);
    }
}
