using static TorchSharp.torch;

namespace Snce.Losses.Fused;

/// <summary>Which implementation runs the row-wise step (log-sum-exps, target statistics, gradient).</summary>
public enum FusedBackend
{
    /// <summary>The CUDA kernel when the tensors are on a CUDA device and it supports the case; libtorch ops otherwise.</summary>
    Auto,
    /// <summary>libtorch ops, chunked over rows and codes: runs anywhere (the CPU path, and the kernel's reference).</summary>
    Torch,
    /// <summary>The NVRTC-compiled row kernel; fails with the reason when it cannot run.</summary>
    Cuda,
}

/// <summary>How the top-k path finds each row's k nearest codes.</summary>
public enum TopKSearch
{
    /// <summary>
    /// <see cref="Neighbors"/> when a <see cref="CodeNeighbors"/> table is given; else <see cref="RowStep"/> on the CUDA kernel
    /// where it can select (k ≤ 128; checked and timed on an H200: 1.39× faster than Full at K = 262,144), and
    /// <see cref="Full"/> otherwise (the libtorch backend, larger k).
    /// </summary>
    Auto,
    /// <summary>Scores against the whole codebook for every row, chunk by chunk, with a running torch.topk merge (the original path; ignores a table).</summary>
    Full,
    /// <summary>
    /// The row step selects each row's top-k from the block's full [rows, K] scores (as dense SNCE has them) in the pass
    /// that reads the logits: on the CUDA kernel without any sort over K (k ≤ 128); on the libtorch backend by torch.topk.
    /// </summary>
    RowStep,
    /// <summary>From a <see cref="CodeNeighbors"/> table (rows it cannot certify searched as in <see cref="Full"/>); a missing table is an error.</summary>
    Neighbors,
}

/// <summary>
/// How the fused losses chunk and compute. Defaults suit training; the benchmark and tests vary them.
/// Invalid values throw when set.
/// </summary>
public sealed record FusedOptions
{
    /// <summary>Default options.</summary>
    public static FusedOptions Default { get; } = new();

    /// <summary>Default <see cref="ChunkBytes"/> on CUDA devices (2 GiB) and on the CPU (256 MiB).</summary>
    public const long DefaultCudaChunkBytes = 2L << 30, DefaultCpuChunkBytes = 256L << 20;

    readonly int? rowChunk, codeChunk;
    readonly long? chunkBytes;
    readonly ScalarType? computeDtype;

    /// <summary>Rows per block; null: as many as <see cref="ChunkBytes"/> allows.</summary>
    public int? RowChunk { get => rowChunk; init => rowChunk = value is null or > 0 ? value : throw new ArgumentOutOfRangeException(nameof(RowChunk), value, "must be positive"); }

    /// <summary>
    /// Codes per elementwise step of the libtorch backend; null: from <see cref="ChunkBytes"/>. (The CUDA kernel
    /// always streams whole rows of a block; see docs/fused-snce.md.)
    /// </summary>
    public int? CodeChunk { get => codeChunk; init => codeChunk = value is null or > 0 ? value : throw new ArgumentOutOfRangeException(nameof(CodeChunk), value, "must be positive"); }

    /// <summary>
    /// Memory budget for the [rows, K] buffers of one row block (logits and target scores); null: 2 GiB on CUDA,
    /// 256 MiB on the CPU. Larger blocks mean fewer passes of the weight-gradient accumulation, smaller ones less memory.
    /// </summary>
    public long? ChunkBytes { get => chunkBytes; init => chunkBytes = value is null or >= 1024 ? value : throw new ArgumentOutOfRangeException(nameof(ChunkBytes), value, "must be at least 1024 bytes"); }

    /// <summary>
    /// dtype of the matmuls (output projection and target scores): Float32, BFloat16 (fp32 accumulation) or Float64;
    /// null: the dtype of the logits (Forward) or of the hidden states (ForwardLinear). Softmax statistics are always
    /// fp32 (fp64 for fp64 inputs).
    /// </summary>
    public ScalarType? ComputeDtype
    {
        get => computeDtype;
        init => computeDtype = value is null or ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float64 ? value
            : throw new ArgumentException($"unsupported compute dtype {value}; use Float32, BFloat16 or Float64", nameof(ComputeDtype));
    }

    /// <summary>These options with the token-range check off when <paramref name="targets"/> say their values need no checking.</summary>
    internal FusedOptions For(TokenTargets targets) => targets.CheckValues || !ValidateTokens ? this : this with { ValidateTokens = false };

    /// <summary>Which implementation runs the row-wise step.</summary>
    public FusedBackend Backend { get; init; } = FusedBackend.Auto;

    /// <summary>How the top-k path finds the k nearest codes (a neighbor table or the whole codebook).</summary>
    public TopKSearch TopKSearch { get; init; } = TopKSearch.Auto;

    /// <summary>
    /// The CUDA row kernel as before issue 12 (pass 2 in pass 1's order; <see cref="TopKSearch.RowStep"/>'s selection
    /// with a second read of the scores in every row): for side-by-side benchmarks.
    /// </summary>
    internal bool PreviousRowKernel { get; init; }

    /// <summary>Check that supervised tokens lie in [0, K) (one small device-to-host copy per call).</summary>
    public bool ValidateTokens { get; init; } = true;
}
