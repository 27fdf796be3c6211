using TorchSharp;

namespace Snce.Tests.Support;

/// <summary>
/// Asserts that a code path leaves no live tensors behind: run it once to warm up (lazy state), then
/// <c>repeats</c> times, and compare TorchSharp's per-thread live-tensor count before and after.
/// A leak of one tensor per call shows as a growth of <c>repeats</c>.
/// </summary>
public static class LeakCheck
{
    public static void AssertNoLeak(Action action, int repeats = 5, string? what = null)
    {
        var growth = LiveTensorGrowth(action, repeats);
        if (growth != 0)
            throw new Xunit.Sdk.XunitException(
                $"{what ?? "code path"} leaked {growth} tensor(s) over {repeats} calls " +
                $"({(double)growth / repeats:F1} per call); wrap the work in torch.NewDisposeScope() and move results out explicitly. " +
                DisposeScopeManager.Statistics);
    }

    /// <summary>Growth of the thread's live tensor count over <paramref name="repeats"/> calls after one warm-up call.</summary>
    public static long LiveTensorGrowth(Action action, int repeats)
    {
        action();
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < repeats; i++) action();
        return DisposeScopeManager.Statistics.ThreadTotalLiveCount - before;
    }
}
