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
    /// <summary><paramref name="launch"/>(kernel, threads) must refuse an unknown name and 0, 48 or 1,056 threads of <paramref name="kernel"/>.</summary>
    static void AssertRefusesUnknownKernelsAndPartialWarps(Action<string, int> launch, string kernel)
    {
        Assert.Equal("emulator refused no_such_kernel with 32 threads", Assert.Throws<InvalidOperationException>(() => launch("no_such_kernel", 32)).Message);
        foreach (var block in new[] { 0, 48, 1056 })
            Assert.Throws<InvalidOperationException>(() => launch(kernel, block));
    }

    [Fact]
    public void TheLossRowLauncherRefusesUnknownKernelsAndPartialWarps()
    {
        var emu = KernelEmulator.Create(out var why);
        Assert.True(emu is not null, $"the kernel emulator needs g++: {why}");
        var args = default(FusedKernelRows.RowArgs);
        AssertRefusesUnknownKernelsAndPartialWarps((kernel, block) => emu.Launch(kernel, 1, block, ref args), "snce_rows_f32_f32");
        Assert.Empty(emu.Kernels);
        Assert.Equal(0, emu.Misaligned);
    }

    [Fact]
    public void TheBlockLauncherRefusesUnknownKernelsAndPartialWarps()
    {
        var emu = BlockKernelEmulator.Create(out var why);
        Assert.True(emu is not null, $"the kernel emulator needs g++: {why}");
        var args = default(BlockKernels.Args);
        AssertRefusesUnknownKernelsAndPartialWarps((kernel, block) => emu.Launch(kernel, 1, block, ref args), "rmsnorm_fwd_f32");
        Assert.Empty(emu.Kernels);
    }
}
