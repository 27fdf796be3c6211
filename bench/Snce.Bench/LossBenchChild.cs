using System.Diagnostics;
using System.Text.Json;
using Snce.Losses;
using Snce.Losses.Fused;
using Snce.Native.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Bench;

/// <summary>One measurement: a method at one size and dtype, in its own process so the caching allocator starts empty.</summary>
/// <param name="Anchors">What the SNCE anchors z are: "random" (z ~ N(0, I), unrelated to the codes), "near" (a random code plus
/// <paramref name="LatentNoise"/> · N(0, I)) or "code" (z = the token's code: code-anchored targets).</param>
public sealed record LossCase(string Method, string Dtype, long N, long H, long D, long K, int TopK, double Tau, string Metric, int Warmup, int Repeats,
    string Backend, string Anchors = "random", double LatentNoise = 0.3);

/// <summary>What a child reports. Times in ms; memory in GiB above the inputs (see <see cref="LossBenchChild"/>).</summary>
/// <param name="SetupMs">Once-per-codebook work outside the timed steps (the neighbor table of snce-fused-topk-table).</param>
/// <param name="FromTable">snce-fused-topk-table: fraction of rows whose top-k the table certified (the rest are searched over all K).</param>
public sealed record LossResult(string Status, double? TimeMs = null, double[]? TimesMs = null, double? MemGib = null, double? MatmulMs = null, string? Message = null,
    double? SetupMs = null, double? FromTable = null);

/// <summary>
/// Runs one <see cref="LossCase"/>: forward + backward of a training step's loss (hidden [N, H] and W [K, H] are
/// leaves that receive .grad). Memory: on CUDA, device memory in use (cuMemGetInfo) after the timed steps minus after
/// the inputs were made and cuBLAS initialized — libtorch's caching allocator never returns memory during the run, so
/// this is the peak reserved by the step (an upper bound of peak allocated). On the CPU, the process's peak resident
/// set (VmHWM, reset through /proc/self/clear_refs after the inputs) minus the resident set then.
/// </summary>
public static class LossBenchChild
{
    public const string Methods = "ce-reference,ce-fused,snce-reference,snce-fused-topk,snce-fused-topk-rowstep,snce-fused-topk-table,snce-fused,ce-fused-before,snce-fused-before,snce-fused-topk-rowstep-before";

    public static LossResult Run(LossCase c, Device device)
    {
        try
        {
            return Measure(c, device);
        }
        catch (Exception e) when (IsOom(e))
        {
            return new LossResult("OOM", Message: FirstLine(e.Message));
        }
    }

    static LossResult Measure(LossCase c, Device device)
    {
        var cuda = device.type == DeviceType.CUDA;
        var dtype = c.Dtype == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var metric = Metric.Parse(c.Metric);
        manual_seed(20261128);
        using var inputs = NewDisposeScope();
        var hidden = randn([c.N, c.H], device: device).to(dtype).requires_grad_();
        var weight = (randn([c.K, c.H], device: device) * (1.0 / Math.Sqrt(c.H))).to(dtype).requires_grad_();
        var codebook = randn([c.K, c.D], device: device);
        var z = c.Anchors switch
        {
            "random" => randn([c.N, c.D], device: device),
            "near" => codebook.index_select(0, randint(c.K, [c.N], device: device)) + c.LatentNoise * randn([c.N, c.D], device: device),
            "code" => codebook.index_select(0, randint(c.K, [c.N], device: device)),
            _ => throw new ArgumentException($"unknown anchors '{c.Anchors}'; use random, near or code"),
        };
        var tokens = metric.Quantize(z, codebook);
        // cuBLAS handle and workspace, with a tiny product: a large one would leave a block in libtorch's cache that
        // the step then reuses unseen (the first GPU run did [N, N] here and read ~0 GiB for small K).
        using (NewDisposeScope()) { hidden.detach().narrow(0, 0, 64).mm(weight.detach().narrow(0, 0, 64).t()); Sync(device); }
        var options = new FusedOptions
        {
            ComputeDtype = dtype,
            Backend = c.Backend switch { "cuda" => FusedBackend.Cuda, "torch" => FusedBackend.Torch, _ => FusedBackend.Auto },
        };

        CodeNeighbors? table = null;
        double? setupMs = null, fromTable = null;
        Action step = c.Method switch
        {
            "ce-reference" => () =>
            {
                var logits = hidden.mm(weight.t());
                nn.functional.cross_entropy(logits.to(ScalarType.Float32), tokens).backward();
            },
            "snce-reference" => () =>
            {
                var logits = hidden.mm(weight.t());
                Tensor q;
                using (no_grad()) q = (metric.Distance(z.to(dtype), codebook.to(dtype)).to(ScalarType.Float32) * (-1.0 / c.Tau)).softmax(1);
                (-(q * logits.to(ScalarType.Float32).log_softmax(1)).sum(1)).mean().backward();
            },
            "ce-fused" => () => FusedCrossEntropy.ForwardLinear(hidden, weight, null, tokens, null, null, options).Loss.backward(),
            "snce-fused" => () => FusedSnce.ForwardLinear(hidden, weight, null, z, codebook, metric, c.Tau, tokens, null, null, options).Loss.backward(),
            "snce-fused-topk" => () => FusedSnce.ForwardLinear(hidden, weight, null, z, codebook, metric, c.Tau, tokens, null, null,
                options with { TopKSearch = TopKSearch.Full }, c.TopK).Loss.backward(),
            "snce-fused-topk-rowstep" => () => FusedSnce.ForwardLinear(hidden, weight, null, z, codebook, metric, c.Tau, tokens, null, null,
                options with { TopKSearch = TopKSearch.RowStep }, c.TopK).Loss.backward(),
            // "-before": the same with the row kernel as before issue 12 (pass 2 in pass 1's order; the row step's top-k
            // with a second read of the scores in every row), for before/after tables from one run.
            "ce-fused-before" => () => FusedCrossEntropy.ForwardLinear(hidden, weight, null, tokens, null, null, options with { PreviousRowKernel = true }).Loss.backward(),
            "snce-fused-before" => () => FusedSnce.ForwardLinear(hidden, weight, null, z, codebook, metric, c.Tau, tokens, null, null,
                options with { PreviousRowKernel = true }).Loss.backward(),
            "snce-fused-topk-rowstep-before" => () => FusedSnce.ForwardLinear(hidden, weight, null, z, codebook, metric, c.Tau, tokens, null, null,
                options with { TopKSearch = TopKSearch.RowStep, PreviousRowKernel = true }, c.TopK).Loss.backward(),
            "snce-fused-topk-table" => () => FusedSnce.ForwardLinear(hidden, weight, null, z, codebook, metric, c.Tau, tokens, null, null,
                options with { TopKSearch = TopKSearch.Neighbors }, c.TopK, table).Loss.backward(),
            _ => throw new ArgumentException($"unknown method '{c.Method}'; use one of {Methods}"),
        };

        Sync(device);
        var mem0 = MemoryBaseline(device);
        // The neighbor table is built once per codebook (the tokenizer's codebook is frozen while a generator trains): not
        // timed, but after the memory baseline, so the memory column includes the table and its build's cached blocks.
        if (c.Method == "snce-fused-topk-table")
        {
            Sync(device);
            var sw = Stopwatch.StartNew();
            table = CodeNeighbors.Build(codebook, metric, CodeNeighbors.DefaultSize(c.TopK, c.K));
            Sync(device);
            setupMs = sw.Elapsed.TotalMilliseconds;
            using (NewDisposeScope())
            {
                var ops = ScoreOperands.Build(z, codebook, tokens, metric, dtype);
                var sel = NeighborSearch.Select(z, codebook, tokens, null, metric, c.Tau, c.TopK, table, ops, FusedOptions.DefaultCudaChunkBytes,
                    4096, ScalarType.Float32);
                fromTable = sel.FromTable / (double)c.N;
            }
        }

        var times = new List<double>();
        // SNCE_PROFILE_STEPS=1: the timed steps (not the warm-up, inputs or check) are the region an
        // "ncu --profile-from-start off" run records (tools/device_loss_bench.sh PART=profile).
        var profile = cuda && Environment.GetEnvironmentVariable("SNCE_PROFILE_STEPS") == "1";
        for (var i = 0; i < c.Warmup + c.Repeats; i++)
        {
            hidden.grad = null;
            weight.grad = null;
            Sync(device);
            if (profile && i == c.Warmup) CudaDriver.ProfilerRegion(start: true);
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope()) step();
            Sync(device);
            if (i >= c.Warmup) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        if (profile) CudaDriver.ProfilerRegion(start: false);
        var mem = MemoryPeak(device) - mem0;
        table?.Dispose();
        using (NewDisposeScope())
        {
            var finite = hidden.grad!.isfinite().all().item<bool>() && weight.grad!.isfinite().all().item<bool>();
            if (!finite) return new LossResult("error", Message: "non-finite gradients");
        }
        hidden.grad = null;
        weight.grad = null;
        double? matmul = c.Method == "ce-fused" ? MatmulMs(hidden.detach(), weight.detach(), c.Repeats, device) : null;
        times.Sort();
        return new LossResult("ok", times[times.Count / 2], times.ToArray(), mem / (double)(1L << 30), matmul, SetupMs: setupMs, FromTable: fromTable);
    }

    /// <summary>The three hidden-size matmuls of a step on their own (logits, grad hidden, grad W), full size, median ms.</summary>
    static double MatmulMs(Tensor h, Tensor w, int repeats, Device device)
    {
        using var scope = NewDisposeScope();
        var g = randn([h.shape[0], w.shape[0]], device: device).to(h.dtype);
        var times = new List<double>();
        for (var i = 0; i < repeats + 1; i++)
        {
            Sync(device);
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope()) { h.mm(w.t()); g.mm(w); g.t().mm(h); }
            Sync(device);
            if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Memory in use now; on the CPU also resets the process's peak resident set to it.</summary>
    static long MemoryBaseline(Device device)
    {
        if (device.type == DeviceType.CUDA) return CudaDriver.MemoryInUse(device);
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return StatusKb("VmRSS") * 1024;
    }

    /// <summary>Peak since <see cref="MemoryBaseline"/>: device memory in use now (the caching allocator kept it), or peak RSS.</summary>
    static long MemoryPeak(Device device) => device.type == DeviceType.CUDA ? CudaDriver.MemoryInUse(device) : StatusKb("VmHWM") * 1024;

    static long StatusKb(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0]);
        return 0;
    }

    static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    public static bool IsOom(Exception e) =>
        e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || e is OutOfMemoryException
        || (e.InnerException is { } inner && IsOom(inner));

    public static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>Child entry: prints the result as one "RESULT {json}" line.</summary>
    public static int RunAndPrint(LossCase c, Device device)
    {
        LossResult r;
        try { r = Run(c, device); }
        catch (Exception e)
        {
            var text = $"{e.GetType().Name}: {e.Message}".ReplaceLineEndings(" | ");
            r = new LossResult("error", Message: text.Length > 600 ? text[..600] + "…" : text);
        }
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(r));
        return 0;
    }
}
