namespace Snce;

/// <summary>Folders Snce writes outside the working directory (never inside git).</summary>
public static class SncePaths
{
    /// <summary>Cache root: SNCE_CACHE, else $XDG_CACHE_HOME/snce, else ~/.cache/snce.</summary>
    public static string CacheDir =>
        Environment.GetEnvironmentVariable("SNCE_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "snce");
}
