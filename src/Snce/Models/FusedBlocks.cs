namespace Snce.Models;

/// <summary>
/// The switch for the fused CUDA kernels of the transformer blocks (RMSNorm, rotary q/k/v, SwiGLU gate; forward and
/// backward; src/Snce/Models/Fused). On by default on CUDA; the CPU always runs the libtorch ops. Turn it off with
/// <c>SNCE_FUSED_BLOCKS=0</c> or by setting <see cref="Enabled"/> (benchmarks compare both in one process).
/// </summary>
public static class FusedBlocks
{
    /// <summary>Whether CUDA tensors go through the fused kernels (read at each op; process-wide).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SNCE_FUSED_BLOCKS") != "0";
}
