namespace Snce.Training;

/// <summary>
/// Writes a checkpoint folder atomically: everything goes into a sibling temp folder, which then replaces
/// the old one by two renames. A crash leaves either the old checkpoint or the new one, never a mix;
/// <see cref="Resolve"/> recovers the old one if the process died between the two renames.
/// </summary>
public static class CheckpointFolder
{
    const string OldSuffix = ".old-";

    /// <summary>Creates the folder content with <paramref name="fill"/> (given the temp folder path) and swaps it into <paramref name="dir"/>.</summary>
    public static void Write(string dir, Action<string> fill)
    {
        var full = Path.GetFullPath(dir);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        Resolve(full);
        var tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            if (Directory.Exists(full))
            {
                var old = $"{full}{OldSuffix}{Guid.NewGuid():N}";
                Directory.Move(full, old);
                Directory.Move(tmp, full);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                Directory.Move(tmp, full);
            }
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
    }

    /// <summary>
    /// Returns <paramref name="dir"/> if it exists; if only a left-over old copy exists (the process died
    /// mid-swap), moves it back first. Stale temp folders are removed. Returns null when there is no checkpoint.
    /// </summary>
    public static string? Resolve(string dir)
    {
        var full = Path.GetFullPath(dir);
        var parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) return null;
        var name = Path.GetFileName(full);
        var olds = Directory.GetDirectories(parent, name + OldSuffix + "*");
        if (!Directory.Exists(full) && olds.Length > 0)
        {
            Directory.Move(olds[0], full);
            olds = olds[1..];
        }
        foreach (var o in olds) Directory.Delete(o, recursive: true);
        foreach (var t in Directory.GetDirectories(parent, name + ".tmp-*"))
            if (!IsOwnedByLiveProcess(t)) Directory.Delete(t, recursive: true);
        return Directory.Exists(full) ? full : null;
    }

    static bool IsOwnedByLiveProcess(string tmp)
    {
        var parts = Path.GetFileName(tmp).Split(".tmp-")[^1].Split('-');
        if (!int.TryParse(parts[0], out var pid) || pid == Environment.ProcessId) return pid == Environment.ProcessId;
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
    }
}
