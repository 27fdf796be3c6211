using Snce.Native;
using System.Runtime.InteropServices;
using Snce.Native.Cuda;
using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>
/// The row-wise step as one CUDA kernel (SnceRows.cu): one thread block per row, two passes over the row
/// (statistics, then gradient written in place), both log-sum-exps online in fp32.
/// </summary>
/// <param name="launcher">Where the kernel runs (the GPU, or the CPU emulation in tests).</param>
/// <param name="threads">Threads per block; null: <see cref="RowLaunch.Threads"/>.</param>
/// <param name="previous">
/// The kernel as before issue 12, for side-by-side benchmarks and tests: pass 2 in pass 1's order, and mode 3's first
/// threshold from the threads' maxima with a second read of the scores (the gather) in every row. The default
/// (false) walks pass 2 in reverse and certifies the top-k from pass 1's per-thread candidates.
/// </param>
internal sealed class FusedKernelRows(IKernelLauncher<FusedKernelRows.RowArgs> launcher, int? threads = null, bool previous = false) : IRowKernel
{
    /// <summary>Largest top-k the kernel takes (its shared-memory buffer).</summary>
    public const int MaxTopK = 1024;

    /// <summary>Largest top-k the kernel selects from the scores itself (mode 3: at most the smallest block of 128 threads).</summary>
    public const int MaxSelectK = 128;

    /// <summary>Mirror of <c>struct RowArgs</c> in SnceRows.cu: 8-byte fields, then 4-byte ones; 120 bytes.</summary>
    /// <remarks><see cref="Flags"/>: SNCE_FLAG_* bits (<see cref="FlagGatherOnly"/>, <see cref="FlagForwardPass2"/>), 0 for the default paths.</remarks>
    [StructLayout(LayoutKind.Sequential)]
    internal struct RowArgs
    {
        public nint Logits, Grad, Scores, Tokens, TopIdx, TopQ, Coef, Mask, Stats;
        public long LdLogits, LdGrad, LdScores, K;
        public float ScoreScale;
        public int Mode, TopK, Flags;
    }

    /// <summary>The kernel source, embedded in the assembly.</summary>
    public static string Source { get; } = CudaModule.EmbeddedSource("SnceRows.cu");

    public string Name => "cuda";

    /// <summary>Why the kernel cannot take this case, or null when it can.</summary>
    public static string? Unsupported(ScalarType logits, TargetKind kind, ScalarType scores, int topK)
    {
        if (logits is not (ScalarType.Float32 or ScalarType.BFloat16)) return $"the kernel takes fp32 or bf16 logits, not {logits}";
        if (kind == TargetKind.Dense && scores is not (ScalarType.Float32 or ScalarType.BFloat16)) return $"the kernel takes fp32 or bf16 target scores, not {scores}";
        if (kind == TargetKind.TopK && topK > MaxTopK) return $"the kernel takes top-k up to {MaxTopK}, not {topK}";
        return null;
    }

    /// <summary>Candidate slots per row of mode 3 (SNCE_CAND in SnceRows.cu).</summary>
    internal const int SelectSlots = 2048;

    /// <summary>Scores each thread keeps from pass 1 in mode 3 (SNCE_THREAD_TOP in SnceRows.cu).</summary>
    internal const int ThreadTop = 4;

    /// <summary>RowArgs.Flags bit: mode 3's selection before issue 12's candidates (SNCE_FLAG_GATHER_ONLY).</summary>
    internal const int FlagGatherOnly = 1;

    /// <summary>RowArgs.Flags bit: pass 2 in pass 1's order, as before issue 12 (SNCE_FLAG_FORWARD_PASS2).</summary>
    internal const int FlagForwardPass2 = 2;

    /// <summary>Why the kernel cannot select the top-k from the scores itself (mode 3), or null when it can.</summary>
    /// <remarks>
    /// Its first threshold is the k-th largest of the threads' maxima, so at least k threads must own a score (K ≥ 8k
    /// with 8-wide vectors, k ≤ 128 threads), unless all K scores fit the candidate slots at once (K ≤ 2,048 − k).
    /// </remarks>
    public static string? UnsupportedSelect(ScalarType scores, int topK, long numCodes)
    {
        if (scores is not (ScalarType.Float32 or ScalarType.BFloat16)) return $"the kernel selects top-k from fp32 or bf16 scores, not {scores}";
        if (topK > MaxSelectK) return $"the kernel selects top-k up to {MaxSelectK} from the scores, not {topK}; use TopKSearch.Full";
        if (numCodes < 8L * topK && numCodes > SelectSlots - topK)
            return $"the kernel selects top-k {topK} from K = {numCodes} scores only with K ≥ {8 * topK} or K ≤ {SelectSlots - topK}; use TopKSearch.Full";
        return null;
    }

    public Tensor Run(RowBlock b)
    {
        var L = b.Logits;
        var (r, k) = (L.shape[0], L.shape[1]);
        if (L.stride(1) != 1 || (b.Grad is not null && (b.Grad.stride(1) != 1 || b.Grad.dtype != L.dtype)))
            throw new InvalidOperationException("the row kernel needs logits and gradient contiguous along codes, of one dtype");
        var dev = L.device;
        var tokens = b.Tokens.to(ScalarType.Int64).contiguous();
        var coef = b.Coef.to(ScalarType.Float32).contiguous();
        var mask = b.Mask?.to(ScalarType.Bool).contiguous();
        var stats = empty(r, 4, dtype: ScalarType.Float32, device: dev);
        Tensor? scores = null, topIdx = null, topQ = null;
        var args = new RowArgs
        {
            Logits = TensorMemory.DataPointer(L),
            Grad = b.Grad is null ? 0 : TensorMemory.DataPointer(b.Grad),
            Tokens = TensorMemory.DataPointer(tokens),
            Coef = TensorMemory.DataPointer(coef),
            Mask = mask is null ? 0 : TensorMemory.DataPointer(mask),
            Stats = TensorMemory.DataPointer(stats),
            LdLogits = L.stride(0),
            LdGrad = b.Grad?.stride(0) ?? 0,
            K = k,
            ScoreScale = (float)(1.0 / b.Tau),
            Flags = previous ? FlagGatherOnly | FlagForwardPass2 : 0,
        };
        switch (b.Target)
        {
            case RowTarget.Dense d:
                scores = d.Raw(0, k).contiguous();
                args.Mode = 1;
                args.Scores = TensorMemory.DataPointer(scores);
                args.LdScores = scores.stride(0);
                break;
            case RowTarget.TopOfScores t:
                scores = t.Raw(0, k).contiguous();
                args.Mode = 3;
                args.TopK = t.K;
                args.Scores = TensorMemory.DataPointer(scores);
                args.LdScores = scores.stride(0);
                break;
            case RowTarget.Sparse s:
                topIdx = s.Index.to(ScalarType.Int64).contiguous();
                topQ = s.Q.to(ScalarType.Float32).contiguous();
                args.Mode = 2;
                args.TopK = (int)topIdx.shape[1];
                args.TopIdx = TensorMemory.DataPointer(topIdx);
                args.TopQ = TensorMemory.DataPointer(topQ);
                break;
            default:
                args.Mode = 0;
                break;
        }
        var scoreType = scores?.dtype ?? L.dtype;
        var why = Unsupported(L.dtype, args.Mode is 1 or 3 ? TargetKind.Dense : TargetKind.Hard, scoreType, args.TopK)
            ?? (args.Mode == 3 ? UnsupportedSelect(scoreType, args.TopK, k) : null);
        var vector = RowLaunch.VectorWidth(L.dtype, scoreType);
        var blockThreads = threads ?? RowLaunch.Threads(k, vector);
        if (args.Mode == 3 && args.TopK > blockThreads) why ??= $"top-k {args.TopK} exceeds the block's {blockThreads} threads";
        if (args.Mode == 3 && (long)ThreadTop * blockThreads > SelectSlots)
            why ??= $"the top-k selection keeps {ThreadTop} candidates per thread in {SelectSlots} slots: at most {SelectSlots / ThreadTop} threads, not {blockThreads}";
        if (why is not null) throw new InvalidOperationException(why);
        launcher.Launch(RowLaunch.KernelName(L.dtype, scoreType, select: args.Mode == 3), checked((int)r), blockThreads, ref args);
        // The tensors behind the pointers may be released now: later work on the same stream is queued after the kernel.
        GC.KeepAlive(scores); GC.KeepAlive(topIdx); GC.KeepAlive(topQ); GC.KeepAlive(tokens); GC.KeepAlive(coef); GC.KeepAlive(mask);
        return stats.to(b.MathDtype);
    }
}

/// <summary>Launch shape of the row kernel (host-side arithmetic, unit-tested).</summary>
internal static class RowLaunch
{
    /// <summary>Codes per vector access: 16 bytes of the wider element type (8 for bf16/bf16, else 4).</summary>
    public static int VectorWidth(ScalarType logits, ScalarType scores) =>
        logits == ScalarType.BFloat16 && scores == ScalarType.BFloat16 ? 8 : 4;

    /// <summary>
    /// Threads per block (one block per row): about 8 vectors per thread per pass, a power of two in [128, 512].
    /// 512 keeps two blocks per multiprocessor possible at up to 64 registers per thread.
    /// </summary>
    public static int Threads(long k, int vectorWidth)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k));
        var vectors = (k + vectorWidth - 1) / vectorWidth;
        var wanted = (vectors + 7) / 8;
        var t = 128;
        while (t < wanted && t < 512) t *= 2;
        return t;
    }

    /// <summary>The <c>extern "C"</c> kernel for a (logits, scores) dtype pair; <paramref name="select"/>: the mode-3 kernel (top-k selected from the scores).</summary>
    public static string KernelName(ScalarType logits, ScalarType scores, bool select = false) =>
        $"snce_rows_{(select ? "topk_" : "")}{Short(logits)}_{Short(scores)}";

    static string Short(ScalarType t) => t switch
    {
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float32 => "f32",
        _ => throw new ArgumentException($"no row kernel for dtype {t}"),
    };
}
