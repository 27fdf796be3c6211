namespace Snce.Training;

/// <summary>
/// The switch for the fused CUDA optimizer step (src/Snce/Training/Fused/AdamWKernels.cu: gradient norm, clip, AdamW
/// by decay group, the bf16 weight copy and the EMA in two kernels over the flat buffers). On by default on CUDA; the
/// CPU always runs <see cref="FlatAdamW"/>'s libtorch ops (and so keeps its bit-exact resume). Turn it off with
/// <c>SNCE_FUSED_OPTIMIZER=0</c> or by setting <see cref="Enabled"/> (benchmarks compare both in one process).
/// </summary>
public static class FusedOptimizer
{
    /// <summary>Whether CUDA flat buffers go through the fused step (read at each step; process-wide).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SNCE_FUSED_OPTIMIZER") != "0";
}
