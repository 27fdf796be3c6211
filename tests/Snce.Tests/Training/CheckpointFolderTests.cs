using Snce.Tests.Support;
using Snce.Training;

namespace Snce.Tests.Training;

public class CheckpointFolderTests
{
    [Fact]
    public void ReplacesTheWholeFolderAtOnce()
    {
        using var dir = new TempDir();
        var ckpt = dir["ckpt"];
        CheckpointFolder.Write(ckpt, tmp => { File.WriteAllText(Path.Combine(tmp, "a.txt"), "1"); File.WriteAllText(Path.Combine(tmp, "old-only.txt"), "x"); });
        CheckpointFolder.Write(ckpt, tmp => File.WriteAllText(Path.Combine(tmp, "a.txt"), "2"));
        Assert.Equal("2", File.ReadAllText(Path.Combine(ckpt, "a.txt")));
        Assert.False(File.Exists(Path.Combine(ckpt, "old-only.txt")));
        Assert.Single(Directory.GetDirectories(dir.Path));
    }

    [Fact]
    public void AFailedWriteKeepsTheOldCheckpoint()
    {
        using var dir = new TempDir();
        var ckpt = dir["ckpt"];
        CheckpointFolder.Write(ckpt, tmp => File.WriteAllText(Path.Combine(tmp, "a.txt"), "good"));
        Assert.Throws<IOException>(() => CheckpointFolder.Write(ckpt, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "a.txt"), "half");
            throw new IOException("disk full");
        }));
        Assert.Equal("good", File.ReadAllText(Path.Combine(ckpt, "a.txt")));
        Assert.Single(Directory.GetDirectories(dir.Path));
    }

    [Fact]
    public void RecoversFromACrashBetweenTheTwoRenames()
    {
        using var dir = new TempDir();
        var ckpt = dir["ckpt"];
        CheckpointFolder.Write(ckpt, tmp => File.WriteAllText(Path.Combine(tmp, "a.txt"), "good"));
        Directory.Move(ckpt, ckpt + ".old-deadbeef"); // as if killed right after the first rename
        Directory.CreateDirectory(ckpt + ".tmp-999999-abc"); // and a stale temp folder of a dead process
        Assert.Equal(Path.GetFullPath(ckpt), CheckpointFolder.Resolve(ckpt));
        Assert.Equal("good", File.ReadAllText(Path.Combine(ckpt, "a.txt")));
        Assert.Single(Directory.GetDirectories(dir.Path));
        Assert.Null(CheckpointFolder.Resolve(dir["none"]));
    }
}
