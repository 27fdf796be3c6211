namespace Snce.Training;

/// <summary>
/// The switch for the fused CUDA optimizer step (src/Snce/Training/Fused/AdamWKernels.cu: gradient norm, clip, AdamW
/// by decay group, the bf16 weight copy and the EMA in two kernels over the flat buffers). On by default since its GPU
/// check (H200, 2026-12-03: relative errors ≤ 1.6e-7 after 5 steps against the libtorch path; the step 2.39 → 0.89 ms at
/// 71.6 M parameters; docs/benchmarks/training.md); CI checks it through the CPU emulator. Turn it off with
/// <c>SNCE_FUSED_OPTIMIZER=0</c> or by setting <see cref="Enabled"/> (benchmarks compare both in one process). The CPU
/// always runs <see cref="FlatAdamW"/>'s libtorch ops (and so keeps its bit-exact resume).
/// </summary>
public static class FusedOptimizer
{
    /// <summary>Whether CUDA flat buffers go through the fused step (read at each step; process-wide).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SNCE_FUSED_OPTIMIZER") != "0";
}
