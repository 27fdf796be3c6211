using Snce.Losses.Fused;
using Snce.Models.Fused;
using Snce.Tests.Losses.Fused;
using Snce.Tests.Models.Fused;

namespace Snce.Tests.Support;

/// <summary>
/// The launch checks both emulated launchers share through <see cref="KernelEmulation"/> and emu_runtime.h's emu_run: an
/// unknown kernel and a block that is not whole warps are refused before any thread runs, for the loss rows and the blocks.
/// (What the kernels compute is checked in FusedKernelEmulationTests and BlockKernelTests, through the same launchers.)
/// </summary>
public class KernelEmulationTests
{
    [Fact]
    public void TheLossRowLauncherRefusesUnknownKernelsAndPartialWarps()
    {
        var emu = KernelEmulator.Create(out var why);
        Assert.True(emu is not null, $"the kernel emulator needs g++: {why}");
        var args = default(FusedKernelRows.RowArgs);
        Assert.Equal("emulator refused snce_rows_f16_f16 with 32 threads", Assert.Throws<InvalidOperationException>(() => emu.Launch("snce_rows_f16_f16", 1, 32, ref args)).Message);
        foreach (var block in new[] { 0, 48, 1056 })
            Assert.Throws<InvalidOperationException>(() => emu.Launch("snce_rows_f32_f32", 1, block, ref args));
        Assert.Empty(emu.Kernels);
        Assert.Equal(0, emu.Misaligned);
    }

    [Fact]
    public void TheBlockLauncherRefusesUnknownKernelsAndPartialWarps()
    {
        var emu = BlockKernelEmulator.Create(out var why);
        Assert.True(emu is not null, $"the kernel emulator needs g++: {why}");
        var args = default(BlockKernels.Args);
        Assert.Equal("emulator refused layernorm_fwd_f32 with 64 threads", Assert.Throws<InvalidOperationException>(() => emu.Launch("layernorm_fwd_f32", 1, 64, ref args)).Message);
        foreach (var block in new[] { 0, 48, 1056 })
            Assert.Throws<InvalidOperationException>(() => emu.Launch("rmsnorm_fwd_f32", 1, block, ref args));
        Assert.Empty(emu.Kernels);
    }
}
