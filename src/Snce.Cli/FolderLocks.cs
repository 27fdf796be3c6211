using Snce.IO;

namespace Snce.Cli;

/// <summary>The verbs' way to take an output folder's <see cref="FolderLock"/>, saying so when it takes over a dead process's lock.</summary>
public static class FolderLocks
{
    /// <summary>Locks <paramref name="dir"/> for <paramref name="verb"/> (e.g. "snce train"), or throws naming the holder.</summary>
    public static FolderLock Take(string dir, string verb)
    {
        var held = FolderLock.Acquire(dir, verb);
        if (held.Stale is { } s)
            Console.Error.WriteLine($"snce: note: '{held.Folder}' was locked by {s}, which ended without releasing it; taking it over");
        return held;
    }
}
