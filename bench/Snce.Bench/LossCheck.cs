using Snce.Losses;
using Snce.Losses.Fused;
using Snce.Native.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Bench;

/// <summary>
/// Before anything is timed: the fused loss against the dense reference (float64 on the same device) and, on CUDA,
/// the kernel backend against the libtorch backend of the same fused code, at small odd sizes (K = 1001: misaligned
/// rows and vector tails; K = 1024: aligned), for every target kind, both forms and both dtypes.
/// </summary>
static class LossCheck
{
    /// <summary>One comparison; errors as in <see cref="Error"/>.</summary>
    /// <param name="Passed">All comparisons within tolerance.</param>
    /// <param name="KernelOk">What gates timing the CUDA kernel: kernel == libtorch backend, and fp32 == reference
    /// (bf16 vs reference differences are reported, not gating: they come from bf16 rounding on both paths).</param>
    public sealed record Row(string Dtype, string Form, string Target, string Metric, long K, double VsReference, double? VsTorchBackend, bool Passed, bool KernelOk);

    public static (List<Row> Rows, List<string> KernelInfo) Run(Device device, string backend)
    {
        var rows = new List<Row>();
        var onCuda = device.type == DeviceType.CUDA;
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            foreach (var k in new long[] { 1001, 1024 })
                foreach (var target in new[] { "ce", "snce", "snce-topk", "snce-topk-rowstep", "snce-topk-table", "snce-topk-code", "ce-before", "snce-before", "snce-topk-rowstep-before" })
                    foreach (var form in new[] { "linear", "logits" })
                        foreach (var metric in target == "snce" && dtype == ScalarType.Float32 && k == 1001 && form == "linear" ? new[] { "l2", "dot", "cosine" } : ["l2"])
                            rows.Add(Compare(device, dtype, k, target, form, metric, onCuda ? backend : "torch"));
        var info = new List<string>();
        if (onCuda && backend == "cuda")
        {
            var module = CudaLauncher<FusedKernelRows.RowArgs>.OrThrow("snce_rows", FusedKernelRows.Source, device).Module;
            info.Add($"kernel: NVRTC {Nvrtc.Load().Version.Major}.{Nvrtc.Load().Version.Minor} ({Nvrtc.Load().LibraryPath}), options [{string.Join(' ', module.Options)}], PTX from {module.PtxOrigin}");
            foreach (var name in new[] { "snce_rows_bf16_bf16", "snce_rows_bf16_f32", "snce_rows_f32_bf16", "snce_rows_f32_f32",
                         "snce_rows_topk_bf16_bf16", "snce_rows_topk_bf16_f32", "snce_rows_topk_f32_bf16", "snce_rows_topk_f32_f32" })
            {
                var f = module.Function(name);
                var (regs, local, shared) = CudaDriver.FunctionResources(f);
                info.Add($"{name}: {regs} registers/thread, {local} B local (spill) memory/thread, {shared} B static shared; " +
                    $"blocks/SM at 512 threads: {CudaDriver.MaxActiveBlocksPerMultiprocessor(f, 512)}, at 128: {CudaDriver.MaxActiveBlocksPerMultiprocessor(f, 128)}");
            }
        }
        return (rows, info);
    }

    static Row Compare(Device device, ScalarType dtype, long k, string checkTarget, string form, string metricName, string backend)
    {
        using var scope = NewDisposeScope();
        // "X-before": target X with the row kernel as before issue 12 (FusedOptions.PreviousRowKernel).
        var previous = checkTarget.EndsWith("-before", StringComparison.Ordinal);
        var target = previous ? checkTarget[..^"-before".Length] : checkTarget;
        const long n = 300, h = 64, d = 32;
        const int topK = 7;
        var metric = Metric.Parse(metricName);
        var tau = metricName switch { "l2" => 10.0, "dot" => 5.0, _ => 0.1 }; // spread targets (not one-hot) at these sizes
        manual_seed(1000 + k);
        var c = randn([k, d], device: device, dtype: ScalarType.Float64);
        var z = c.index_select(0, randint(k, [n], device: device)) + 0.6 * randn([n, d], device: device, dtype: ScalarType.Float64);
        if (target == "snce-topk-code") z = c.index_select(0, randint(k, [n], device: device)); // code-anchored: z = c_token
        var tokens = metric.Quantize(z, c);
        var mask = rand([n], device: device) > 0.25;
        var weights = rand([n], device: device) + 0.5;
        var hidden = randn([n, h], device: device).to(dtype);
        var weight = (randn([k, h], device: device) * 0.3).to(dtype);
        var (zc, cc) = (z.to(ScalarType.Float32), c.to(ScalarType.Float32));

        // Dense reference in float64 on the same (rounded) inputs.
        var h64 = hidden.to(ScalarType.Float64).requires_grad_();
        var w64 = weight.to(ScalarType.Float64).requires_grad_();
        var logits64 = h64.mm(w64.t());
        Tensor q;
        if (target == "ce") q = zeros(n, k, dtype: ScalarType.Float64, device: device).scatter_(1, tokens.unsqueeze(1), ones(n, 1, dtype: ScalarType.Float64, device: device));
        else
        {
            // In bf16 the fused path rounds the anchors and codes to bf16 for the target matmul; the reference does too.
            var s = -metric.Distance(zc.to(dtype).to(ScalarType.Float64), cc.to(dtype).to(ScalarType.Float64)) / tau;
            if (target == "snce") q = s.softmax(1);
            else if (target is "snce-topk-table" or "snce-topk-code")
            {
                // The table path measures distances in fp32 on the anchors and codes as given (not rounded to the dtype).
                var s32 = -metric.Distance(zc.to(ScalarType.Float64), cc.to(ScalarType.Float64)) / tau;
                var (v, i) = s32.topk(topK, 1);
                q = zeros_like(s32).scatter_(1, i, v.softmax(1));
            }
            else { var (v, i) = s.topk(topK, 1); q = zeros_like(s).scatter_(1, i, v.softmax(1)); }
        }
        var li = -(q * logits64.log_softmax(1)).sum(1);
        var mf = mask.to(ScalarType.Float64);
        var reference = (mf * weights * li).sum() / mf.sum().clamp_min(1);
        reference.backward();
        Tensor[] refGrads = form == "linear" ? [h64.grad!, w64.grad!] : [];

        using var table = target is "snce-topk-table" or "snce-topk-code" ? CodeNeighbors.Build(cc, metric, CodeNeighbors.DefaultSize(topK, k)) : null;
        (double Loss, Tensor[] Grads) Fused(string b)
        {
            var opt = new FusedOptions
            {
                Backend = b == "cuda" ? FusedBackend.Cuda : FusedBackend.Torch, ComputeDtype = dtype, RowChunk = 128, CodeChunk = 300,
                TopKSearch = table is not null ? TopKSearch.Neighbors : target.StartsWith("snce-topk-rowstep", StringComparison.Ordinal) ? TopKSearch.RowStep : TopKSearch.Full,
                PreviousRowKernel = previous,
            };
            int? tk = target.StartsWith("snce-topk", StringComparison.Ordinal) ? topK : null;
            var hl = hidden.detach().requires_grad_();
            var wl = weight.detach().requires_grad_();
            Tensor? lg = form == "logits" ? hl.detach().mm(wl.detach().t()).requires_grad_() : null;
            LossOutput o = (target, form) switch
            {
                ("ce", "linear") => FusedCrossEntropy.ForwardLinear(hl, wl, null, tokens, mask, weights, opt),
                ("ce", _) => FusedCrossEntropy.Forward(lg!, tokens, mask, weights, opt),
                (_, "linear") => FusedSnce.ForwardLinear(hl, wl, null, zc, cc, metric, tau, tokens, mask, weights, opt, tk, table),
                _ => FusedSnce.Forward(lg!, zc, cc, metric, tau, tokens, mask, weights, tk, opt, table),
            };
            o.Loss.backward();
            return (o.Loss.to(ScalarType.Float64).item<double>(), form == "linear" ? [hl.grad!, wl.grad!] : [lg!.grad!]);
        }

        var (loss, grads) = Fused(backend);
        if (form == "logits")
        {
            // The reference gradient w.r.t. the logits, by autograd on a leaf copy.
            var l64 = logits64.detach().requires_grad_();
            ((mf * weights * -(q * l64.log_softmax(1)).sum(1)).sum() / mf.sum().clamp_min(1)).backward();
            refGrads = [l64.grad!];
        }
        var vsRef = Error(reference.item<double>(), refGrads, loss, grads);
        double? vsTorch = null;
        if (backend == "cuda")
        {
            var (tl, tg) = Fused("torch");
            vsTorch = Error(tl, tg, loss, grads);
        }
        var f32 = dtype == ScalarType.Float32;
        // bf16 top-k: rounding may swap the k-th and (k+1)-th neighbor of a few rows (a jump of the target), hence 0.1.
        var refTol = f32 ? 1e-4 : target.StartsWith("snce-topk", StringComparison.Ordinal) ? 1e-1 : 3e-2;
        // The row step's own selection (snce-topk-rowstep) breaks ties among equal bf16 scores differently from
        // torch.topk in the libtorch backend (both pick a valid top-k; measured on the H200 2026-12-02: 0.017–0.023
        // kernel vs libtorch, 0.017–0.024 vs the float64 reference, the old host top-k 0.017–0.021): in bf16 it gets the
        // top-k tolerance against the libtorch backend too. The fp32 rows (no ties) still check its selection at 1e-4.
        var kernelTol = f32 ? 1e-4 : target.StartsWith("snce-topk-rowstep", StringComparison.Ordinal) ? 1e-1 : 1e-2;
        var kernelOk = (vsTorch is null || vsTorch <= kernelTol) && (!f32 || vsRef <= refTol);
        var passed = kernelOk && vsRef <= refTol;   // false for NaN too
        return new Row(f32 ? "fp32" : "bf16", form, checkTarget, metricName, k, vsRef, vsTorch, passed, kernelOk);
    }

    /// <summary>max(|Δloss| / max(1, |loss|), ‖Δg‖ / ‖g‖ over the gradients): relative norms, as top-k boundaries may swap
    /// a neighbor under bf16 rounding (a discontinuity of the target, not an error of the loss).</summary>
    static double Error(double refLoss, Tensor[] refGrads, double loss, Tensor[] grads)
    {
        var e = Math.Abs(loss - refLoss) / Math.Max(1, Math.Abs(refLoss));
        for (var i = 0; i < refGrads.Length; i++)
        {
            var r = refGrads[i].to(ScalarType.Float64);
            var diff = (grads[i].to(ScalarType.Float64) - r).norm().item<double>() / Math.Max(1e-300, r.norm().item<double>());
            e = double.IsNaN(diff) || double.IsNaN(e) ? double.NaN : Math.Max(e, diff);
        }
        return e;
    }
}
