using System.Diagnostics;
using Snce.IO;
using Snce.Tests.Support;

namespace Snce.Tests.IO;

public class FolderLockTests
{
    [Fact]
    public void ASecondWriterFailsAtOnceNamingTheHoldersPid()
    {
        using var dir = new TempDir();
        using var first = FolderLock.Acquire(dir["run"], "snce train");
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<FolderInUseException>(() => FolderLock.Acquire(dir["run"], "snce train"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Contains($"PID {Environment.ProcessId}", e.Message);
        Assert.Contains("snce train", e.Message);
        Assert.Equal(Environment.ProcessId, e.Owner?.Pid);
    }

    [Fact]
    public void IsReleasedOnDisposeAndTheNextHolderSeesNoStaleLock()
    {
        using var dir = new TempDir();
        FolderLock.Acquire(dir["run"], "snce train").Dispose();
        using var again = FolderLock.Acquire(dir["run"], "snce train");
        Assert.Null(again.Stale);
        Assert.False(Directory.Exists(dir["run"]));                     // taking a lock does not create the folder
    }

    [Fact]
    public void AStaleLockOfADeadProcessIsDetectedAndTakenOver()
    {
        using var dir = new TempDir();
        using var dead = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        dead.WaitForExit();
        Assert.False(FolderLock.IsRunning(dead.Id));
        // What a process killed with -9 leaves: the owner file; the kernel has already dropped its lock.
        File.WriteAllText(FolderLock.LockFileOf(dir["run"]) + ".owner", $"{dead.Id}\n1764621000000\nsnce train\n");
        using var held = FolderLock.Acquire(dir["run"], "snce train");
        Assert.Equal(dead.Id, held.Stale?.Pid);
    }

    [Fact]
    public void AnotherProcessHoldingTheLockBlocksUntilItIsKilled()
    {
        // flock(1) takes the same kernel lock .NET takes for FileShare.None; kill -9 must release it.
        using var dir = new TempDir();
        var lockFile = FolderLock.LockFileOf(dir["run"]);
        using var holder = Process.Start(new ProcessStartInfo("flock", [lockFile, "sleep", "60"]) { UseShellExecute = false })!;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        FolderInUseException? refused = null;
        while (DateTime.UtcNow < deadline && refused is null)
        {
            try { FolderLock.Acquire(dir["run"], "test").Dispose(); Thread.Sleep(50); }     // flock may not have started yet
            catch (FolderInUseException e) { refused = e; }
        }
        Assert.NotNull(refused);
        holder.Kill(entireProcessTree: true);            // flock(1) and its sleep share the open lock file
        holder.WaitForExit();
        // Kill waits for flock(1) only; its sleep (which shares the lock) dies a moment later.
        FolderLock? held = null;
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(20); held is null; Thread.Sleep(50))
        {
            try { held = FolderLock.Acquire(dir["run"], "test"); }
            catch (FolderInUseException) when (DateTime.UtcNow < until) { }
        }
        held.Dispose();
    }

    [Fact]
    public void AnUnwritableFolderFailsBeforeAnyWork()
    {
        var e = Assert.Throws<UnauthorizedAccessException>(() => FolderLock.Acquire("/proc/snce-x", "snce tokenizer train"));
        Assert.Contains("cannot write to '/proc/snce-x'", e.Message);
    }
}
