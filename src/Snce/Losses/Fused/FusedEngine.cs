using System.Runtime.CompilerServices;
using Snce.Native;
using Snce.Native.Cuda;
using TorchSharp;
using static TorchSharp.torch;

[assembly: InternalsVisibleTo("Snce.Tests")]
[assembly: InternalsVisibleTo("snce-bench")]

namespace Snce.Losses.Fused;

/// <summary>One fused loss call: given logits [N, K] or hidden [N, H] with weight [K, H], and its target.</summary>
internal sealed record FusedProblem
{
    public Tensor? Logits { get; init; }
    public Tensor? Hidden { get; init; }
    public Tensor? Weight { get; init; }
    public Tensor? Bias { get; init; }
    public required Tensor Tokens { get; init; }
    public Tensor? Mask { get; init; }
    public Tensor? Weights { get; init; }
    public TargetKind Kind { get; init; }
    public int TopK { get; init; }
    public Tensor? Anchors { get; init; }
    public Tensor? Codebook { get; init; }
    public Metric? Metric { get; init; }
    public double Tau { get; init; }
    /// <summary>Code neighbor table for the top-k path, or null.</summary>
    public CodeNeighbors? Neighbors { get; init; }
    public required FusedOptions Options { get; init; }
}

/// <summary>
/// The fused loss: row blocks, target scores as one shifted matmul, the row-wise step (libtorch or CUDA kernel),
/// gradients accumulated block by block, and autograd through a zero-valued surrogate.
/// </summary>
/// <remarks>
/// Autograd: the loss returned is value + Σ_x (⟨x, g_x⟩ − stopgrad⟨x, g_x⟩) over the inputs x that require grad,
/// with g_x the gradient computed here. Its value is exactly the loss (the bracket is 0) and d loss / d x = g_x, times
/// whatever scale backward brings. Unlike a custom autograd Function (whose backward runs on libtorch's device thread
/// and returns tensors a managed wrapper keeps alive until the GC finalizes it), everything here is ordinary libtorch
/// autograd: g_x is held only by the graph and freed with it, and the gradient accumulated into a leaf's .grad is a
/// fresh tensor that AccumulateGrad can take without a copy. Cost: one dot product over each input in the forward pass
/// and one scaling in the backward pass.
/// </remarks>
internal static class FusedEngine
{
    public static LossOutput Run(FusedProblem p, IRowKernel? rowsOverride = null)
    {
        var linear = p.Hidden is not null;
        var soft = p.Kind != TargetKind.Hard;
        var (n, k, device) = Validate(p);
        var opt = p.Options;
        var inputDtype = linear ? p.Hidden!.dtype : p.Logits!.dtype;
        var cdt = opt.ComputeDtype ?? inputDtype;
        if (cdt is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"the fused loss computes in Float32, BFloat16 or Float64; got {cdt} inputs; set FusedOptions.ComputeDtype");
        var md = cdt == ScalarType.Float64 || inputDtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var logitsDtype = linear ? cdt : p.Logits!.dtype;

        var grad = is_grad_enabled();
        var needLogits = grad && !linear && p.Logits!.requires_grad;
        var needH = grad && linear && p.Hidden!.requires_grad;
        var needW = grad && linear && p.Weight!.requires_grad;
        var needB = grad && linear && p.Bias is { requires_grad: true };
        var needGrad = needLogits || needH || needW || needB;

        var rows = rowsOverride ?? SelectRows(p, device, logitsDtype, cdt);
        var cuda = device.type == DeviceType.CUDA;
        var budget = opt.ChunkBytes ?? (cuda ? FusedOptions.DefaultCudaChunkBytes : FusedOptions.DefaultCpuChunkBytes);
        var sc = TensorMemory.ElementSize(cdt);
        var search = Search(p, rows, cdt, k);
        var table = search == TopKSearch.Neighbors ? p.Neighbors : null;
        // Rows per block from the [rows, K] buffers: logits (linear form), target scores (dense, and top-k selected by the
        // row step), and the full top-k search's score chunks (before the logits exist); the table's search needs none.
        var perRow = (linear ? k * sc : 0) + (p.Kind == TargetKind.Dense || search == TopKSearch.RowStep ? k * sc : 0);
        var searchRows = RoundRows(Math.Clamp(budget / (k * sc), 1, n), n);
        if (p.Kind == TargetKind.TopK && search == TopKSearch.Full) perRow = Math.Max(perRow, k * sc);
        var blockRows = opt.RowChunk ?? (perRow == 0 ? n : RoundRows(Math.Clamp(budget / perRow, 1, n), n));
        var codeChunk = opt.CodeChunk ?? Math.Clamp(budget / (Math.Min(blockRows, n) * 8L * TensorMemory.ElementSize(md)), 1, k);

        using var scope = NewDisposeScope();
        Tensor lossValue, hardCe, stats;
        Tensor? entropy = null, gLogits = null, gH = null, gW = null, gB = null;
        using (no_grad())
        {
            var mask = p.Mask?.to(ScalarType.Bool);
            var tokens = p.Tokens.to(ScalarType.Int64);
            if (mask is not null) tokens = tokens.masked_fill(mask.logical_not(), 0); // any valid index on unsupervised rows
            if (opt.ValidateTokens) CheckTokenRange(tokens, k);
            var maskF = mask?.to(md) ?? ones(n, dtype: md, device: device);
            var denom = maskF.sum().clamp_min(1);
            var coef = (p.Weights is null ? maskF : maskF * p.Weights.to(md)) / denom;

            var ops = soft ? ScoreOperands.Build(p.Anchors!, p.Codebook!, tokens, p.Metric!, cdt) : null;
            stats = empty(n, 4, dtype: md, device: device);
            // Top-k from the neighbor table: every row's targets up front (one device-to-host copy for the rows it
            // cannot certify), then the blocks only slice them.
            NeighborSearch.Selection? selected = null;
            if (table is not null)
            {
                table.CheckMatches(p.Codebook!, p.Metric!, fingerprint: opt.ValidateTokens);
                selected = NeighborSearch.Select(p.Anchors!, p.Codebook!, tokens, mask, p.Metric!, p.Tau, p.TopK, table, ops!, budget,
                    opt.RowChunk ?? searchRows, md);
            }

            Tensor? h = null, w = null, bias = null;
            if (linear)
            {
                h = p.Hidden!.detach().to(cdt);
                w = p.Weight!.detach().to(cdt);
                bias = p.Bias?.detach().to(cdt);
                if (needH) gH = empty(n, h.shape[1], dtype: cdt, device: device);
                if (needW) gW = empty(k, h.shape[1], dtype: cdt, device: device);
                if (needB) gB = zeros(k, dtype: md, device: device);
            }
            var logits = linear ? null : p.Logits!.detach();
            if (logits is not null && logits.stride(1) != 1) logits = logits.contiguous();
            if (needLogits) gLogits = empty(n, k, dtype: p.Logits!.dtype, device: device);

            for (long r0 = 0; r0 < n; r0 += blockRows)
            {
                using var blockScope = NewDisposeScope();
                var r = Math.Min(blockRows, n - r0);
                RowTarget target = p.Kind switch
                {
                    TargetKind.Dense => new RowTarget.Dense((c0, len) => ops!.Raw(r0, r, c0, len)),
                    TargetKind.TopK when selected is not null => new RowTarget.Sparse(selected.Index.narrow(0, r0, r), selected.Q.narrow(0, r0, r)),
                    TargetKind.TopK when search == TopKSearch.RowStep => new RowTarget.TopOfScores((c0, len) => ops!.Raw(r0, r, c0, len), p.TopK),
                    TargetKind.TopK => Sparse(NeighborTopK.Select(ops!, r0, r, p.TopK, p.Tau, Math.Clamp(budget / (r * 2L * sc), 1, k), md)),
                    _ => new RowTarget.Hard(),
                };
                Tensor blockLogits, hBlock = null!;
                Tensor? blockGrad;
                if (linear)
                {
                    hBlock = h!.narrow(0, r0, r);
                    blockLogits = bias is null ? hBlock.mm(w!.t()) : addmm(bias, hBlock, w!.t(), 1, 1);
                    blockGrad = needGrad ? blockLogits : null; // the gradient overwrites the logits block in place
                }
                else
                {
                    blockLogits = logits!.narrow(0, r0, r);
                    blockGrad = gLogits?.narrow(0, r0, r);
                }
                var st = rows.Run(new RowBlock(blockLogits, blockGrad, target, tokens.narrow(0, r0, r), coef.narrow(0, r0, r),
                    mask?.narrow(0, r0, r), p.Tau, md, codeChunk));
                stats.narrow(0, r0, r).copy_(st);
                if (!linear || blockGrad is null) continue;
                if (gH is not null) gH.narrow(0, r0, r).copy_(blockGrad.mm(w!));
                // Accumulated in the compute dtype (bf16: one rounding per block); beta 0 ignores the empty buffer.
                gW?.addmm_(blockGrad.t(), hBlock, beta: r0 == 0 ? 0 : 1, alpha: 1);
                gB?.add_(blockGrad.sum(0, type: md));
            }

            lossValue = (coef * stats.select(1, 0)).sum();
            hardCe = (maskF * stats.select(1, 1)).sum() / denom;
            if (soft) entropy = (maskF * stats.select(1, 2)).sum() / denom;
        }

        var loss = lossValue;
        if (needGrad)
        {
            Tensor zero;
            if (gLogits is not null) zero = ZeroWithGradient(p.Logits!, gLogits);
            else
            {
                zero = zeros([], dtype: md, device: device);
                if (gH is not null) zero = zero + ZeroWithGradient(p.Hidden!, gH);
                if (gW is not null) zero = zero + ZeroWithGradient(p.Weight!, gW);
                if (gB is not null) zero = zero + ZeroWithGradient(p.Bias!, gB);
            }
            loss = lossValue + zero;
        }
        return new LossOutput(loss.MoveToOuterDisposeScope(), hardCe.MoveToOuterDisposeScope(), entropy?.MoveToOuterDisposeScope());
    }

    static RowTarget Sparse((Tensor Index, Tensor Q) t) => new RowTarget.Sparse(t.Index, t.Q);

    /// <summary>Multiples of 128 rows when a block is not the whole batch (and at least 256 rows).</summary>
    static long RoundRows(long rows, long n) => rows < n && rows >= 256 ? rows / 128 * 128 : rows;

    /// <summary>How the top-k targets are found (never Auto); Full for problems without top-k (unused then).</summary>
    static TopKSearch Search(FusedProblem p, IRowKernel rows, ScalarType computeDtype, long k)
    {
        if (p.Kind != TargetKind.TopK) return TopKSearch.Full;
        return p.Options.TopKSearch switch
        {
            TopKSearch.Full => TopKSearch.Full,
            TopKSearch.RowStep => TopKSearch.RowStep,
            TopKSearch.Auto when p.Neighbors is not null => TopKSearch.Neighbors,
            // The kernel's row-step selection: checked against the libtorch backend and timed on an H200 (2026-12-02,
            // tools/device_loss_bench.sh, K = 262,144, bf16): 58.9 ms against Full's 81.6 ms, the memory of dense SNCE
            // (2.50 vs 3.51 GiB). Full where the kernel cannot select (libtorch backend, k > 128, small K).
            TopKSearch.Auto when rows is FusedKernelRows && FusedKernelRows.UnsupportedSelect(computeDtype, p.TopK, k) is null => TopKSearch.RowStep,
            TopKSearch.Auto => TopKSearch.Full,
            TopKSearch.Neighbors => p.Neighbors is not null ? TopKSearch.Neighbors : throw new ArgumentException(
                "TopKSearch.Neighbors needs a code neighbor table: pass one built with CodeNeighbors.Build(codebook, metric, size), or use TopKSearch.Auto"),
            _ => throw new ArgumentException($"unknown top-k search {p.Options.TopKSearch}"),
        };
    }

    /// <summary>
    /// ⟨x, g⟩ − stopgrad⟨x, g⟩ as a scalar of the math dtype: value exactly 0, gradient g w.r.t. x. The graph keeps g
    /// (the managed wrapper is disposed with the caller's scope), so g lives until backward frees the graph.
    /// </summary>
    static Tensor ZeroWithGradient(Tensor x, Tensor g)
    {
        var gx = g.dtype == x.dtype ? g : g.to(x.dtype);
        // dot on CUDA takes at most int.MaxValue elements (cuBLAS); beyond that a product and a sum.
        var d = x.numel() <= int.MaxValue ? x.reshape(-1).dot(gx.reshape(-1)) : (x * gx).sum();
        return (d - d.detach()).to(g.dtype == ScalarType.Float64 || x.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
    }

    static IRowKernel SelectRows(FusedProblem p, Device device, ScalarType logitsDtype, ScalarType computeDtype)
    {
        var backend = p.Options.Backend;
        if (backend == FusedBackend.Torch) return TorchRows.Instance;
        var why = device.type != DeviceType.CUDA ? "the tensors are not on a CUDA device"
            : FusedKernelRows.Unsupported(logitsDtype, p.Kind, computeDtype, p.TopK);
        if (why is null)
        {
            try { return new FusedKernelRows(CudaLauncher<FusedKernelRows.RowArgs>.OrThrow("snce_rows", FusedKernelRows.Source, device), previous: p.Options.PreviousRowKernel); }
            catch (SnceSetupException e) { why = e.Message; }
        }
        if (backend == FusedBackend.Cuda) throw new InvalidOperationException($"the CUDA backend of the fused loss cannot run here: {why}");
        return TorchRows.Instance;
    }

    static void CheckTokenRange(Tensor tokens, long k)
    {
        using var scope = NewDisposeScope();
        var range = stack([tokens.min(), tokens.max()]).cpu().data<long>().ToArray();
        if (range[0] < 0 || range[1] >= k)
            throw new ArgumentException($"token ids must lie in [0, {k}) on supervised rows; found [{range[0]}, {range[1]}]");
    }

    static (long N, long K, Device Device) Validate(FusedProblem p)
    {
        long n, k;
        Device device;
        if (p.Hidden is not null)
        {
            var (h, w) = (p.Hidden, p.Weight ?? throw new ArgumentException("weight is required with hidden"));
            if (h.dim() != 2 || w.dim() != 2 || h.shape[1] != w.shape[1])
                throw new ArgumentException($"expected hidden [N, H] and weight [K, H], got [{Shape(h)}] and [{Shape(w)}]");
            (n, k, device) = (h.shape[0], w.shape[0], h.device);
            SameDevice(device, w, "weight");
            if (p.Bias is { } b)
            {
                if (b.dim() != 1 || b.shape[0] != k) throw new ArgumentException($"expected bias [{k}], got [{Shape(b)}]");
                SameDevice(device, b, "bias");
            }
            Floating(h, "hidden"); Floating(w, "weight");
        }
        else
        {
            var l = p.Logits ?? throw new ArgumentException("logits or hidden is required");
            if (l.dim() != 2) throw new ArgumentException($"expected logits [N, K], got [{Shape(l)}]");
            (n, k, device) = (l.shape[0], l.shape[1], l.device);
            Floating(l, "logits");
        }
        if (n < 1 || k < 1) throw new ArgumentException($"need at least one row and one code, got N = {n}, K = {k}");
        if (p.Tokens.dim() != 1 || p.Tokens.shape[0] != n) throw new ArgumentException($"expected tokens [{n}], got [{Shape(p.Tokens)}]");
        if (p.Tokens.dtype is not (ScalarType.Int64 or ScalarType.Int32)) throw new ArgumentException($"tokens must be int64 or int32, got {p.Tokens.dtype}");
        SameDevice(device, p.Tokens, "tokens");
        if (p.Mask is { } m)
        {
            if (m.dim() != 1 || m.shape[0] != n) throw new ArgumentException($"expected mask [{n}], got [{Shape(m)}]");
            SameDevice(device, m, "mask");
        }
        if (p.Weights is { } wt)
        {
            if (wt.dim() != 1 || wt.shape[0] != n) throw new ArgumentException($"expected weights [{n}], got [{Shape(wt)}]");
            SameDevice(device, wt, "weights");
        }
        if (p.Kind == TargetKind.Hard) return (n, k, device);

        var (z, c) = (p.Anchors ?? throw new ArgumentException("anchors are required for SNCE"), p.Codebook ?? throw new ArgumentException("a codebook is required for SNCE"));
        if (p.Metric is null) throw new ArgumentException($"a metric is required for SNCE ({Metric.Allowed})");
        if (z.dim() != 2 || c.dim() != 2 || z.shape[1] != c.shape[1] || z.shape[0] != n || c.shape[0] != k)
            throw new ArgumentException($"expected anchors [{n}, D] and codebook [{k}, D], got [{Shape(z)}] and [{Shape(c)}]");
        SameDevice(device, z, "anchors"); SameDevice(device, c, "codebook");
        if (!(p.Tau > 0) || double.IsInfinity(p.Tau)) throw new ArgumentException($"tau must be a positive finite number, got {p.Tau}");
        if (p.Kind == TargetKind.TopK && (p.TopK < 1 || p.TopK > k)) throw new ArgumentException($"top-k must lie in [1, {k}] (K), got {p.TopK}");
        return (n, k, device);
    }

    static void Floating(Tensor t, string what)
    {
        if (!t.is_floating_point()) throw new ArgumentException($"{what} must be a floating-point tensor, got {t.dtype}");
    }

    static void SameDevice(Device device, Tensor t, string what)
    {
        if (t.device.type != device.type || (t.device.type == DeviceType.CUDA && t.device.index != device.index))
            throw new ArgumentException($"{what} is on {t.device}, the other inputs on {device}");
    }

    static string Shape(Tensor t) => string.Join(", ", t.shape);
}
