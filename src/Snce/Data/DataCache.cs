using System.Text.Json;
using Snce.Data.BuiltIn;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>An npm package a cached data set came from, with the SHA-512 of the tarball that was converted.</summary>
public sealed record PackageRecord(string Name, string Version, string Sha512);

/// <summary>The split stored with a cache: the rule's inputs and the resulting counts.</summary>
public sealed record SplitRecord(int Seed, double ValidationFraction, string Key, int Train, int Validation);

/// <summary>dataset.json: what a cache folder holds and where it came from.</summary>
public sealed record DataSetManifest(
    int Format, string Name, string Title, PackageRecord[] Packages, string Licence, string? Credit, string? Notice,
    int Count, int Channels, int Size, SplitRecord Split, string[] Notes, DateTime FetchedUtc, string SnceVersion);

/// <summary>
/// The on-disk form of a converted data set, one folder per set under the data dir:
/// <c>images.npy</c> uint8 [M, C, H, W], <c>labels.npy</c> int64 [M], <c>split.npy</c> uint8 [M] (0 train, 1 validation),
/// <c>classes.json</c> (names, index = label), <c>attributes.json</c> (name → M strings) and <c>dataset.json</c>
/// (<see cref="DataSetManifest"/>). The folder is written elsewhere and renamed into place, so it is whole or absent.
/// </summary>
public static class DataCache
{
    /// <summary>Bumped when the layout changes; a cache of another format counts as not cached and is fetched again.</summary>
    public const int Format = 1;
    /// <summary>The cache folder's <see cref="DataSetManifest"/> (format, counts, split, source packages with their SHA-512).</summary>
    public const string ManifestFile = "dataset.json";
    const string ImagesFile = "images.npy", LabelsFile = "labels.npy", SplitFile = "split.npy", ClassesFile = "classes.json", AttributesFile = "attributes.json";

    static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <summary>True when <paramref name="dir"/> holds a complete cache of the current format.</summary>
    public static bool IsCached(string dir)
    {
        if (!File.Exists(Path.Combine(dir, ManifestFile))) return false;
        try
        {
            return ReadManifest(dir).Format == Format
                && new[] { ImagesFile, LabelsFile, SplitFile, ClassesFile }.All(f => File.Exists(Path.Combine(dir, f)));
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    /// <summary>The manifest of the cache folder <paramref name="dir"/>; throws <see cref="InvalidDataException"/> when it is empty or not a manifest.</summary>
    public static DataSetManifest ReadManifest(string dir)

    {
        var path = Path.Combine(dir, ManifestFile);
        try
        {
            return JsonSerializer.Deserialize<DataSetManifest>(File.ReadAllText(path), JsonOptions)
                ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a Snce data set manifest ({e.Message})", e);
        }
    }

    /// <summary>Writes a converted data set into <paramref name="dir"/> (a fresh folder; the caller renames it into place).</summary>
    public static DataSetManifest Write(string dir, BuiltInDataSet set, DataSetContent content, byte[] split,
        PackageRecord[] packages, int seed, double validationFraction)
    {
        Directory.CreateDirectory(dir);
        using (var scope = NewDisposeScope())
        {
            Npy.Save(Path.Combine(dir, ImagesFile), tensor(content.Images, [content.Count, content.Channels, content.Size, content.Size], ScalarType.Byte));
            Npy.Save(Path.Combine(dir, LabelsFile), tensor(content.Labels, [content.Count], ScalarType.Int64));
            Npy.Save(Path.Combine(dir, SplitFile), tensor(split, [content.Count], ScalarType.Byte));
        }
        AtomicFile.WriteAllText(Path.Combine(dir, ClassesFile), JsonSerializer.Serialize(content.Classes, JsonOptions));
        if (content.Attributes.Count > 0)
            AtomicFile.WriteAllText(Path.Combine(dir, AttributesFile), JsonSerializer.Serialize(content.Attributes, JsonOptions));
        var validation = split.Count(s => s == ImageDataset.ValidationSplit);
        var manifest = new DataSetManifest(Format, set.Name, set.Title, packages, set.Licence, set.Credit, set.Notice,
            content.Count, content.Channels, content.Size,
            new SplitRecord(seed, validationFraction, content.SplitKey, content.Count - validation, validation),
            [.. content.Notes], DateTime.UtcNow, typeof(DataCache).Assembly.GetName().Version?.ToString(3) ?? "?");
        AtomicFile.WriteAllText(Path.Combine(dir, ManifestFile), JsonSerializer.Serialize(manifest, JsonOptions));
        return manifest;
    }

    /// <summary>Reads a cache folder into memory (tensors detached from any dispose scope: the data set owns them).</summary>
    public static ImageDataset Read(string dir)
    {
        var manifest = ReadManifest(dir);
        if (manifest.Format != Format)
            throw new InvalidDataException($"{dir} is a data set cache of format {manifest.Format}, this Snce reads format {Format}; fetch it again");
        var classes = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(dir, ClassesFile)), JsonOptions) ?? [];
        var attributesPath = Path.Combine(dir, AttributesFile);
        var attributes = File.Exists(attributesPath)
            ? JsonSerializer.Deserialize<Dictionary<string, string[]>>(File.ReadAllText(attributesPath), JsonOptions) ?? []
            : [];
        var images = Npy.Load(Path.Combine(dir, ImagesFile)).DetachFromDisposeScope();
        var labels = Npy.Load(Path.Combine(dir, LabelsFile)).DetachFromDisposeScope();
        var split = Npy.Load(Path.Combine(dir, SplitFile)).DetachFromDisposeScope();
        if (images.dtype != ScalarType.Byte || images.dim() != 4 || labels.shape[0] != images.shape[0] || split.shape[0] != images.shape[0]
            || attributes.Values.Any(a => a.Length != images.shape[0]))
        {
            images.Dispose(); labels.Dispose(); split.Dispose();
            throw new InvalidDataException($"{dir}: images, labels, split and attributes disagree in length or type; delete the folder and fetch again");
        }
        return new ImageDataset
        {
            Name = manifest.Name, Images = images, Labels = labels, Split = split, Classes = classes,
            Attributes = attributes, Credit = manifest.Credit, Notice = manifest.Notice,
        };
    }

    /// <summary>Every complete cache under <paramref name="dataDir"/>, by name.</summary>
    public static IReadOnlyList<(DataSetManifest Manifest, string Dir, long Bytes)> List(string dataDir)
    {
        if (!Directory.Exists(dataDir)) return [];
        return [.. Directory.GetDirectories(dataDir)
            .Where(d => !Path.GetFileName(d).StartsWith('.') && IsCached(d))
            .Order(StringComparer.Ordinal)
            .Select(d => (ReadManifest(d), d, Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length)))];
    }
}
