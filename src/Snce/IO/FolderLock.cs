using System.Diagnostics;
using System.Globalization;

namespace Snce.IO;

/// <summary>Who holds (or held) a folder lock: written next to the lock so a second writer can name it.</summary>
/// <param name="Pid">The holder's process id.</param>
/// <param name="Holder">What the holder is doing, e.g. "snce train".</param>
/// <param name="Since">When it took the lock (UTC).</param>
public sealed record FolderLockOwner(int Pid, string Holder, DateTimeOffset Since)
{
    /// <summary>"PID 1234, snce train since 20:41:07 UTC".</summary>
    public override string ToString() => $"PID {Pid}, {Holder} since {Since.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC";

    internal string Serialize() => $"{Pid}\n{Since.ToUnixTimeMilliseconds()}\n{Holder}\n";

    internal static FolderLockOwner? Parse(string text)
    {
        var lines = text.Split('\n');
        if (lines.Length < 3 || !int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ms)) return null;
        try { return new FolderLockOwner(pid, lines[2], DateTimeOffset.FromUnixTimeMilliseconds(ms)); }
        catch (ArgumentOutOfRangeException) { return null; }
    }
}

/// <summary>Another process holds the folder: the message names it and what to do.</summary>
public sealed class FolderInUseException(string message, FolderLockOwner? owner) : IOException(message)
{
    /// <summary>The holder, when its owner file could be read.</summary>
    public FolderLockOwner? Owner { get; } = owner;
}

/// <summary>
/// An exclusive, advisory lock on an output folder (a run, tokenizer, shard or classifier folder), so that two
/// writers never mix their files. The lock is a hidden sibling file <c>.NAME.lock</c> opened with
/// <see cref="FileShare.None"/> (an exclusive <c>flock</c> on Linux and macOS, a share lock on Windows) for as
/// long as the lock is held: the kernel releases it when the process ends, however it ends (kill −9 included),
/// so there is no stale lock to clean up by hand. <c>.NAME.lock.owner</c> names the holder (PID, verb, time)
/// while it is held; one found by a new holder was left by a process that died, which <see cref="Stale"/> reports.
/// </summary>
/// <remarks>
/// A sibling rather than a file inside the folder: tokenizer and classifier checkpoints replace their whole folder
/// atomically (<see cref="Snce.Training.CheckpointFolder"/>), which would take a lock file inside with them.
/// Taking the lock also proves the parent folder writable, before any work (and, for an existing folder, the
/// folder itself).
/// </remarks>
public sealed class FolderLock : IDisposable
{
    readonly FileStream handle;
    readonly string ownerPath;
    bool released;

    FolderLock(string dir, string lockPath, string ownerPath, FileStream handle, FolderLockOwner? stale)
    {
        (Folder, LockPath, this.ownerPath, this.handle, Stale) = (dir, lockPath, ownerPath, handle, stale);
    }

    /// <summary>The locked folder (absolute).</summary>
    public string Folder { get; }

    /// <summary>The lock file.</summary>
    public string LockPath { get; }

    /// <summary>The previous holder, when it died without releasing (its owner file was still there); null otherwise.</summary>
    public FolderLockOwner? Stale { get; }

    /// <summary>The lock file of <paramref name="dir"/>: <c>PARENT/.NAME.lock</c>.</summary>
    public static string LockFileOf(string dir)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"cannot lock the root folder '{full}'; choose a subfolder");
        return Path.Combine(parent, "." + Path.GetFileName(full) + ".lock");
    }

    /// <summary>
    /// Takes the lock on <paramref name="dir"/> at once or throws: <see cref="FolderInUseException"/> naming the
    /// holder's PID when another process has it; <see cref="UnauthorizedAccessException"/> or <see cref="IOException"/>
    /// naming the folder when it cannot be written. The folder itself is not created.
    /// </summary>
    /// <param name="dir">The folder to be written.</param>
    /// <param name="holder">What this process does there ("snce train"), for the other writer's message.</param>
    public static FolderLock Acquire(string dir, string holder)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        var lockPath = LockFileOf(full);
        var ownerPath = lockPath + ".owner";
        var parent = Path.GetDirectoryName(lockPath)!;
        FileStream handle;
        try
        {
            Directory.CreateDirectory(parent);
            handle = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (File.Exists(lockPath) && e is not (DirectoryNotFoundException or PathTooLongException) && IsSharingViolation(e))
        {
            var owner = ReadOwner(ownerPath, wait: true);
            var who = owner is null ? "another process (its owner file is not readable)" : $"another process ({owner})";
            throw new FolderInUseException(
                $"'{full}' is in use by {who}; two writers would mix their files. Wait for it to finish" +
                (owner is null ? "" : $" or stop it (kill {owner.Pid}: a training run saves a checkpoint first)") + ", or choose another folder", owner);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new UnauthorizedAccessException($"cannot write to '{full}': {e.Message.TrimEnd('.')}; choose a folder you can write", e);
        }
        try
        {
            var stale = File.Exists(ownerPath) ? ReadOwner(ownerPath, wait: false) : null;
            if (Directory.Exists(full)) ProbeWritable(full);
            var me = new FolderLockOwner(Environment.ProcessId, holder, DateTimeOffset.UtcNow);
            File.WriteAllText(ownerPath, me.Serialize());
            return new FolderLock(full, lockPath, ownerPath, handle, stale is not null && stale.Pid != Environment.ProcessId ? stale : null);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>True when a process with this id runs now (a reused PID counts as running: the check is for messages only).</summary>
    public static bool IsRunning(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Releases the lock: the owner file goes first, then the kernel lock. Idempotent.</summary>
    public void Dispose()
    {
        if (released) return;
        released = true;
        try { File.Delete(ownerPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        handle.Dispose();
    }

    static bool IsSharingViolation(IOException e) =>
        e.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021)   // EWOULDBLOCK (Linux 11, macOS 35); Windows sharing/lock violation
        || e.Message.Contains("being used by another process", StringComparison.Ordinal);

    static FolderLockOwner? ReadOwner(string ownerPath, bool wait)
    {
        // The holder writes its owner file just after taking the lock: give it a moment.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (File.Exists(ownerPath) && FolderLockOwner.Parse(File.ReadAllText(ownerPath)) is { } owner) return owner;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (!wait || attempt >= 10) return null;
            Thread.Sleep(20);
        }
    }

    static void ProbeWritable(string dir)
    {
        var probe = Path.Combine(dir, $".snce-write-probe-{Environment.ProcessId}");
        try
        {
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new UnauthorizedAccessException($"cannot write to '{dir}': {e.Message.TrimEnd('.')}; choose a folder you can write", e);
        }
    }
}
