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

    /// <summary>Locks every folder of <paramref name="dirs"/> (none, one or a few) for <paramref name="verb"/>; disposing releases them all.</summary>
    public static IDisposable TakeAll(IEnumerable<string> dirs, string verb)
    {
        var held = new List<FolderLock>();
        try
        {
            foreach (var d in dirs) held.Add(Take(d, verb));
            return new All(held);
        }
        catch
        {
            foreach (var h in held) h.Dispose();
            throw;
        }
    }

    sealed class All(List<FolderLock> held) : IDisposable
    {
        public void Dispose()
        {
            foreach (var h in held) h.Dispose();
        }
    }
}
