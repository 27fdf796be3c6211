using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Snce.Diagnostics;
using Snce.Native;
using TorchSharp;

namespace Snce.Bench;

/// <summary>
/// <c>snce-bench loss</c>: forward+backward time and peak memory of CE and SNCE, reference (dense [N, K] logits,
/// log-softmax and targets) against fused (<see cref="Snce.Losses.Fused"/>), in the fused-linear form of a training
/// step (hidden [N, H], W [K, H]). First checks fused == reference at a small size on the same device (and, on CUDA,
/// the kernel against the libtorch backend); each measurement then runs in a fresh child process.
/// </summary>
public static class LossBench
{
    const double MatmulTflops = 790; // bf16, measured on the H200 with PyTorch and TorchSharp (../shared/FACTS.md)

    sealed record Settings(long N, long H, long D, long[] Ks, string[] Dtypes, string[] Methods, int TopK, double Tau, string Metric,
        int Warmup, int Repeats, string Backend, string Out, string Name, bool InProcess, int BudgetS, int ChildTimeoutS, string Child, string DeviceArg,
        string Anchors, double LatentNoise, bool Check);

    public static int Run(string[] argv)
    {
        var a = new BenchArgs(argv);
        var device = a.Device();
        var s = Parse(a, device);
        a.RejectUnknown();
        if (s.Anchors is not ("random" or "near" or "code")) throw new ArgumentException($"unknown --anchors '{s.Anchors}'; use random, near or code");
        foreach (var m in s.Methods)
            if (!LossBenchChild.Methods.Split(',').Contains(m)) throw new ArgumentException($"unknown method '{m}' in --methods; use some of {LossBenchChild.Methods}");
        if (s.Child == "case") return LossBenchChild.RunAndPrint(Case(s, s.Methods[0], s.Dtypes[0], s.Ks[0]), device);
        if (s.Child == "check")
        {
            Console.WriteLine("RESULT " + CheckJson(device, s.Backend));
            return 0;
        }
        return Parent(s, device, argv);
    }

    static Settings Parse(BenchArgs a, torch.Device device)
    {
        var quick = a.Flag("quick");
        var cuda = device.type == DeviceType.CUDA;
        var (n, h, d, ks) = quick ? (64L, 32L, 16L, "128,500") : cuda ? (16384L, 1024L, 256L, "4096,16384,65536,262144") : (1024L, 1024L, 256L, "1024,4096");
        return new Settings(
            N: a.Int("n", (int)n), H: a.Int("hidden", (int)h), D: a.Int("dim", (int)d), Ks: a.Longs("ks", ks),
            Dtypes: a.List("dtypes", "bf16,fp32"), Methods: a.List("methods", "ce-fused,snce-fused,snce-fused-topk,snce-fused-topk-rowstep,snce-fused-topk-table,ce-reference,snce-reference"),
            TopK: a.Int("topk", 32), Tau: double.Parse(a.Get("tau", "8"), CultureInfo.InvariantCulture), Metric: a.Get("metric", "l2"),
            Warmup: a.Int("warmup", 1), Repeats: a.Int("repeats", 0), Backend: a.Get("backend", cuda ? "cuda" : "torch"),
            Out: a.Get("out", "docs/benchmarks"), Name: a.Get("name", "loss"), InProcess: a.Flag("in-process"),
            BudgetS: a.Int("budget-s", 330), ChildTimeoutS: a.Int("child-timeout-s", 150), Child: a.Get("child", ""),
            DeviceArg: cuda ? $"cuda:{Math.Max(0, device.index)}" : "cpu",
            Anchors: a.Get("anchors", "random"), LatentNoise: double.Parse(a.Get("latent-noise", "0.3"), CultureInfo.InvariantCulture),
            Check: a.Get("check", "true") != "false");
    }

    static LossCase Case(Settings s, string method, string dtype, long k)
    {
        var work = (double)s.N * k * s.H;
        var repeats = s.Repeats > 0 ? s.Repeats : work <= Math.Pow(2, 38) ? 10 : work <= Math.Pow(2, 40) ? 5 : 3;
        return new LossCase(method, dtype, s.N, s.H, s.D, k, s.TopK, s.Tau, s.Metric, s.Warmup, repeats, s.Backend, s.Anchors, s.LatentNoise);
    }

    static int Parent(Settings s, torch.Device device, string[] argv)
    {
        var cuda = device.type == DeviceType.CUDA;
        var report = new BenchReport(s.Name, "snce-bench loss " + string.Join(' ', argv));
        var sys = SystemReport.Collect(device);
        report.Machine = cuda && sys.Gpus.Count > 0
            ? $"{sys.Gpus[0].Name} ({sys.Gpus[0].MemoryBytes / (1L << 30)} GiB), libtorch {sys.LibTorchVersion}"
            : $"CPU, {sys.CpuThreads} threads, libtorch {sys.LibTorchVersion}";
        var clock = Stopwatch.StartNew();

        // 1. Correctness on this device before any timing.
        var backend = s.Backend;
        var rowStepOk = true;
        var beforeOk = true;
        if (!s.Check) report.Notes.Add("CHECK SKIPPED (--check false, for profiling runs): the kernel was not compared with the reference in this run.");
        else
        {
            var check = Spawn(s, ["--child", "check"], s.ChildTimeoutS, inProcess: !cuda || s.InProcess, () => CheckJson(device, s.Backend));
            var checkResult = check.Json is { } cj ? JsonSerializer.Deserialize<CheckResult>(cj, JsonOptions)! : null;
            var checkRows = checkResult is { Error: null } ? checkResult : null;
            var checkPassed = checkRows is not null && checkRows.Rows.All(r => r.Passed);
            // The row step's own top-k selection (kernel mode 3) is gated on its own: a failure there skips only its method.
            // The kernel as before issue 12 ("-before" targets) is gated on its own too: a failure skips the "-before" methods.
            static bool Before(LossCheck.Row r) => r.Target.EndsWith("-before", StringComparison.Ordinal);
            var kernelOk = checkRows is not null && checkRows.Rows.Where(r => r.Target != "snce-topk-rowstep" && !Before(r)).All(r => r.KernelOk);
            rowStepOk = checkRows is not null && checkRows.Rows.Where(r => r.Target == "snce-topk-rowstep").All(r => r.KernelOk);
            beforeOk = checkRows is not null && checkRows.Rows.Where(Before).All(r => r.KernelOk);
            report.Notes.Add(checkRows is null
                ? $"CHECK FAILED TO RUN: {checkResult?.Error ?? check.Error}"
                : $"Check before timing (N=300, H=64, D=32, τ = 10 (l2), 5 (dot), 0.1 (cosine), top-k 7, masked rows and weights, row blocks of 128): fused vs the dense float64 reference" +
                  (cuda && s.Backend == "cuda" ? " and the CUDA kernel vs the libtorch backend" : "") +
                  $"; error = max(|Δloss| / max(1, |loss|), ‖Δgrad‖ / ‖grad‖) (pass: fp32 ≤ 1e-4; bf16 ≤ 3e-2 vs reference (top-k ≤ 0.1: rounding can swap the k-th neighbor), ≤ 1e-2 kernel vs libtorch (the row step's own top-k selection ≤ 0.1: bf16 ties break differently)); {(checkPassed ? "all passed" : "SOME FAILED")}.");
            if (checkRows is not null)
            {
                foreach (var r in checkRows.Rows)
                    report.Notes.Add($"check {r.Dtype} {r.Form} {r.Target} {r.Metric} K={r.K}: vs reference {r.VsReference:G3}" +
                        (r.VsTorchBackend is double t ? $", kernel vs libtorch backend {t:G3}" : "") + (r.Passed ? "" : " — FAILED"));
                report.Notes.AddRange(checkRows.Info);
            }
            if (cuda && s.Backend == "cuda" && !kernelOk)
            {
                backend = "torch";
                report.Notes.Add("The CUDA kernel did not pass the check: it is NOT timed; fused rows below use the libtorch backend.");
            }
            else
            {
                if (!rowStepOk) report.Notes.Add("The kernel's own top-k selection (snce-topk-rowstep) did not pass the check: snce-fused-topk-rowstep is NOT timed.");
                if (!beforeOk) report.Notes.Add("The row kernel as before issue 12 (the -before check targets) did not pass the check: the -before methods are NOT timed.");
            }
        }
        foreach (var line in report.Notes) Console.WriteLine(line);

        report.Notes.Add($"Shapes: N={s.N} positions, hidden H={s.H}, code dim D={s.D}, metric {s.Metric}, τ={s.Tau}, top-k {s.TopK}; hidden and W in the dtype " +
            "(leaves that receive .grad), anchors and codebook fp32 (cast to the dtype for the target matmul), tokens = nearest codes. No bias, no mask. " +
            $"Anchors: {s.Anchors switch { "random" => "z ~ N(0, I), unrelated to the codes", "near" => $"z = a random code + {s.LatentNoise}·N(0, I)", _ => "z = the token's code (code-anchored)" }} (--anchors).");
        report.Notes.Add("snce-fused-topk searches every row's top-k over all K codes on the host side (TopKSearch.Full: chunked score matmuls and torch.topk, " +
            "the original path); snce-fused-topk-rowstep has the row step select it from the block's full scores in the pass that reads the logits " +
            "(TopKSearch.RowStep: on the CUDA kernel no sort over K, on the libtorch backend torch.topk; the kernel certifies it from each thread's 4 largest " +
            "scores of that pass, reading the scores once where the certificate holds); snce-fused-topk-table takes it from a " +
            $"CodeNeighbors table of max(2k, k + 16) codes per code where certified (from_table = fraction of rows), searching the rest over all K; the table's " +
            "build (once per codebook) is setup_ms, not timed, and its memory is in mem_gib.");
        report.Notes.Add("Methods: ce-reference = logits = h·Wᵀ, cross_entropy(logits.float()); snce-reference = the same logits, q = softmax(−d/τ) [N, K] fp32, " +
            "−Σ q·log_softmax(logits.float()); *-fused = FusedCrossEntropy/FusedSnce.ForwardLinear (default options: row blocks of ≤ 2 GiB of [rows, K] buffers), " +
            $"backend {backend}; X-before = X with the row kernel as before issue 12 (pass 2 in pass 1's order, the row step's top-k read the scores twice " +
            "in every row), for before/after in one run.");
        report.Notes.Add("time_ms: median over the timed steps (after warm-up) of one forward+backward, synchronized; bound_ms = 3·2·N·K·H FLOPs / 790 TFLOP/s " +
            "(bf16 rate of this GPU; for fp32 the same figure, unreachable in fp32) — matmul_ms is the three hidden-size matmuls alone, full size, in the dtype.");
        report.Notes.Add(cuda
            ? "mem_gib: device memory in use (cuMemGetInfo) after the timed steps minus after creating the inputs and initializing cuBLAS, each case in a fresh " +
              "process; libtorch's caching allocator does not give memory back during the run, so this is the peak RESERVED by the steps (≥ peak allocated), " +
              "including the .grad of hidden and W."
            : "mem_gib: the child process's peak resident set (VmHWM, reset via /proc/self/clear_refs after creating the inputs) minus its resident set then.");

        // 2. Timing, one fresh process per case; ce-fused first in each configuration (the ratios' baseline).
        var methods = s.Methods.OrderBy(m => m == "ce-fused" ? 0 : 1).ToArray();
        foreach (var dtype in s.Dtypes)
            foreach (var k in s.Ks)
            {
                LossResult? ceFused = null;
                foreach (var method in methods)
                {
                    var c = Case(s, method, dtype, k) with { Backend = backend };
                    LossResult r;
                    if (clock.Elapsed.TotalSeconds > s.BudgetS) r = new LossResult("skipped", Message: $"time budget of {s.BudgetS} s spent");
                    else if (method == "snce-fused-topk-rowstep" && !rowStepOk) r = new LossResult("skipped", Message: "the row step's top-k failed the check");
                    else if (method.EndsWith("-before", StringComparison.Ordinal) && !beforeOk) r = new LossResult("skipped", Message: "the previous row kernel failed the check");
                    else
                    {
                        var run = Spawn(s, ["--child", "case", "--methods", method, "--dtypes", dtype, "--ks", k.ToString(CultureInfo.InvariantCulture),
                            "--repeats", c.Repeats.ToString(CultureInfo.InvariantCulture), "--backend", backend], s.ChildTimeoutS,
                            s.InProcess, () => JsonSerializer.Serialize(LossBenchChild.Run(c, device)));
                        r = run.Json is { } j ? JsonSerializer.Deserialize<LossResult>(j)! : new LossResult(run.TimedOut ? "timeout" : "error", Message: run.Error);
                    }
                    if (method == "ce-fused") ceFused = r;
                    report.Add(Row(s, c, method.Contains("fused") ? backend : "libtorch", r, ceFused));
                    report.Save(s.Out);
                }
            }
        report.Save(s.Out);
        Console.WriteLine();
        Console.WriteLine(report.Markdown());
        Console.WriteLine($"saved {Path.Combine(s.Out, s.Name)}.json/.md in {clock.Elapsed.TotalSeconds:F0} s");
        return 0;
    }

    static Dictionary<string, object?> Row(Settings s, LossCase c, string backend, LossResult r, LossResult? ce)
    {
        var bound = 3 * 2.0 * s.N * c.K * s.H / (MatmulTflops * 1e12) * 1e3;
        var ok = r.Status == "ok";
        var ceOk = ce is { Status: "ok" };
        return new()
        {
            ["dtype"] = c.Dtype, ["K"] = c.K, ["method"] = c.Method, ["backend"] = backend, ["status"] = r.Status,
            ["time_ms"] = ok ? r.TimeMs : null, ["mem_gib"] = ok ? r.MemGib : null,
            ["bound_ms"] = bound, ["x_bound"] = ok ? r.TimeMs / bound : null,
            ["x_ce_fused"] = ok && ceOk ? r.TimeMs / ce!.TimeMs : null,
            ["mem_x_ce_fused"] = ok && ceOk && ce!.MemGib > 0 ? r.MemGib / ce.MemGib : null,
            ["matmul_ms"] = r.MatmulMs, ["setup_ms"] = r.SetupMs, ["from_table"] = r.FromTable, ["repeats"] = c.Repeats,
            ["note"] = ok ? null : r.Message,
        };
    }

    sealed record CheckResult(List<LossCheck.Row> Rows, List<string> Info, string? Error);

    /// <summary>The check as JSON; an exception (e.g. NVRTC's compile log, a CUDA fault) becomes its full text in "error".</summary>
    static string CheckJson(torch.Device device, string backend)
    {
        try
        {
            var (rows, info) = LossCheck.Run(device, backend);
            return JsonSerializer.Serialize(new CheckResult(rows, info, null));
        }
        catch (Exception e)
        {
            return JsonSerializer.Serialize(new CheckResult([], [], $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}"));
        }
    }

    static readonly JsonSerializerOptions JsonOptions = new() { PropertyNameCaseInsensitive = true };

    sealed record Spawned(string? Json, string? Error, bool TimedOut);

    /// <summary>Runs this benchmark again as a child (same device and libtorch) and returns its RESULT json.</summary>
    static Spawned Spawn(Settings s, string[] childArgs, int timeoutS, bool inProcess, Func<string> local)
    {
        if (inProcess)
        {
            try { return new Spawned(local(), null, false); }
            catch (Exception e) when (LossBenchChild.IsOom(e)) { return new Spawned(JsonSerializer.Serialize(new LossResult("OOM", Message: LossBenchChild.FirstLine(e.Message))), null, false); }
        }
        var host = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") psi.ArgumentList.Add(typeof(LossBench).Assembly.Location);
        psi.ArgumentList.Add("loss");
        var args = new List<string>(childArgs)
        {
            "--device", s.DeviceArg,
            "--n", s.N.ToString(CultureInfo.InvariantCulture), "--hidden", s.H.ToString(CultureInfo.InvariantCulture), "--dim", s.D.ToString(CultureInfo.InvariantCulture),
            "--topk", s.TopK.ToString(CultureInfo.InvariantCulture), "--tau", s.Tau.ToString(CultureInfo.InvariantCulture), "--metric", s.Metric,
            "--warmup", s.Warmup.ToString(CultureInfo.InvariantCulture),
            "--anchors", s.Anchors, "--latent-noise", s.LatentNoise.ToString(CultureInfo.InvariantCulture),
        };
        if (!args.Contains("--backend")) args.AddRange(["--backend", s.Backend]);
        // The child loads the same libtorch without asking python3 again.
        if (TorchRuntime.Status is { LibTorchSource: "pytorch" } status) args.AddRange(["--libtorch", status.LibTorchDir]);
        foreach (var x in args) psi.ArgumentList.Add(x);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutS)))
        {
            p.Kill(entireProcessTree: true);
            return new Spawned(null, $"no result within {timeoutS} s", true);
        }
        var line = stdout.Result.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (line is not null) return new Spawned(line["RESULT ".Length..], null, false);
        var tail = (stderr.Result + stdout.Result).Trim().Split('\n').TakeLast(3);
        return new Spawned(null, $"child exited with {p.ExitCode}: {string.Join(" | ", tail)}", false);
    }
}
