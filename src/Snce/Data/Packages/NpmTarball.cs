using System.Formats.Tar;
using System.IO.Compression;

namespace Snce.Data.Packages;

/// <summary>Reads files out of an npm tarball (.tgz: gzip over ustar, everything under one top folder, usually <c>package/</c>).</summary>
public static class NpmTarball
{
    /// <summary>
    /// Calls <paramref name="read"/> with the path (without the top folder, '/'-separated) and the bytes of every
    /// regular file whose path <paramref name="wanted"/> accepts, in archive order.
    /// </summary>
    public static void ForEachFile(string tgzPath, Func<string, bool> wanted, Action<string, byte[]> read)
    {
        using var file = File.OpenRead(tgzPath);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        try
        {
            while (tar.GetNextEntry(copyData: false) is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
                var path = entry.Name.Replace('\\', '/');
                var slash = path.IndexOf('/');
                path = slash >= 0 ? path[(slash + 1)..] : path;
                if (!wanted(path)) continue;
                var bytes = new byte[entry.Length];
                entry.DataStream.ReadExactly(bytes);
                read(path, bytes);
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new InvalidDataException($"{tgzPath} is not a complete npm tarball ({e.Message}); delete it and fetch again", e);
        }
    }

    /// <summary>The bytes of the files at the given paths; throws naming the first path that is missing.</summary>
    public static Dictionary<string, byte[]> ReadFiles(string tgzPath, params string[] paths)
    {
        var found = new Dictionary<string, byte[]>();
        var set = paths.ToHashSet();
        ForEachFile(tgzPath, set.Contains, (p, b) => found[p] = b);
        foreach (var p in paths)
            if (!found.ContainsKey(p)) throw new InvalidDataException($"{Path.GetFileName(tgzPath)} has no {p}: not the expected package layout");
        return found;
    }
}
