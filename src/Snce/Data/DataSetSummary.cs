namespace Snce.Data;

/// <summary>What <c>snce data info</c> shows: counts per split and class, image shape, origin, licence and credit.</summary>
public sealed record DataSetSummary(
    string Name, string? Title, string? Licence, string? Credit, string? Notice,
    string? CacheDir, PackageRecord[] Packages, SplitRecord? SavedSplit,
    int Count, int Channels, int Size, int Train, int Validation,
    string[] Classes, int[] TrainPerClass, int[] ValidationPerClass,
    string[] Attributes, IReadOnlyList<SkippedFile> Skipped, string[] Notes)
{
    /// <summary>Counts of a loaded data set; origin fields from the cache manifest when there is one.</summary>
    public static DataSetSummary Of(ImageDataset data, DataSetManifest? manifest, string? cacheDir)
    {
        var train = data.CountPerClass(ImageDataset.TrainSplit);
        var validation = data.CountPerClass(ImageDataset.ValidationSplit);
        var validationCount = data.Split.data<byte>().ToArray().Count(s => s == ImageDataset.ValidationSplit);
        return new DataSetSummary(data.Name, manifest?.Title, manifest?.Licence, data.Credit, data.Notice,
            cacheDir, manifest?.Packages ?? [], manifest?.Split,
            data.Count, data.Channels, data.Size, data.Count - validationCount, validationCount,
            data.Classes, train, validation, [.. data.Attributes.Keys], data.Skipped, manifest?.Notes ?? []);
    }
}
