namespace Snce.Training;

/// <summary>
/// The switch for the fused CUDA optimizer step (src/Snce/Training/Fused/AdamWKernels.cu: gradient norm, clip, AdamW
/// by decay group, the bf16 weight copy and the EMA in two kernels over the flat buffers). Off by default until a GPU run
/// has checked it against the libtorch path (CI checks it through the CPU emulator only): turn it on with
/// <c>SNCE_FUSED_OPTIMIZER=1</c> or by setting <see cref="Enabled"/> (benchmarks compare both in one process). The CPU
/// always runs <see cref="FlatAdamW"/>'s libtorch ops (and so keeps its bit-exact resume).
/// </summary>
public static class FusedOptimizer
{
    /// <summary>Whether CUDA flat buffers go through the fused step (read at each step; process-wide).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SNCE_FUSED_OPTIMIZER") == "1";
}
