namespace Snce.Data;

/// <summary>
/// Where text rendering finds a font on a machine without system fonts (seen on the GPU machine): the .ttf named by
/// <see cref="Variable"/>, else the first .ttf under the usual font folders (DejaVuSans preferred).
/// </summary>
public static class FontFiles
{
    /// <summary>Environment variable naming a .ttf file for plots and grid labels.</summary>
    public const string Variable = "SNCE_FONT";

    /// <summary>The file <see cref="Variable"/> names (null when unset or empty; it may not exist: callers say so).</summary>
    public static string? Chosen => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } f ? f : null;

    /// <summary>The first .ttf under the usual font folders, DejaVuSans.ttf first; null when there is none.</summary>
    public static string? FindInstalled() =>
        new[] { "/usr/share/fonts", "/usr/local/share/fonts", Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local/share/fonts") }
            .Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.ttf", SearchOption.AllDirectories))
            .OrderBy(f => Path.GetFileName(f) == "DejaVuSans.ttf" ? 0 : 1).FirstOrDefault();
}
