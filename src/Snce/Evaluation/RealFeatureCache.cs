using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Snce.Data;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>FD-ResNet18 features and their Gaussian statistics of a data set's held-out (validation) split.</summary>
public sealed class RealReference : IDisposable
{
    /// <summary>The cache key (data set, image shape, validation count and content hash, feature space).</summary>
    public required string Key { get; init; }
    /// <summary>The data set's name.</summary>
    public required string DataSet { get; init; }
    /// <summary>float32 [M, 512] on the CPU.</summary>
    public required Tensor Features { get; init; }
    /// <summary>Mean and covariance of <see cref="Features"/>.</summary>
    public required FeatureStatistics Statistics { get; init; }
    /// <summary>Validation images behind the statistics.</summary>
    public int Count => (int)Features.shape[0];
    /// <summary>Channels, height, width of the real images (generated images must match).</summary>
    public required (int Channels, int Height, int Width) ImageShape { get; init; }
    /// <summary>True when read from the cache rather than computed now.</summary>
    public bool FromCache { get; init; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Features.Dispose();
        Statistics.Dispose();
    }
}

/// <summary>
/// Computes the real-image reference for FD-ResNet18 once per data set and resolution and caches it under
/// <see cref="SncePaths.CacheDir"/>/eval/ as safetensors (features float32 [M, 512], mean and covariance float64).
/// The key includes a SHA-256 of the validation images' bytes, so a changed split, size or channel count
/// (or different images under the same name) computes a new entry instead of reusing a stale one.
/// </summary>
public static partial class RealFeatureCache
{
    /// <summary>Default cache folder: <see cref="SncePaths.CacheDir"/>/eval.</summary>
    public static string DefaultDir => Path.Combine(SncePaths.CacheDir, "eval");

    /// <summary>e.g. <c>fashion-mnist-1x28x28-val10000-3f2a…-fd-resnet18-onnx-0.23.1-pool512-bilinear224</c>.</summary>
    /// The training split (<paramref name="split"/> = <see cref="ImageDataset.TrainSplit"/>, for memorization metrics) is keyed <c>train</c> instead of <c>val</c>.
    public static string KeyOf(ImageDataset data, byte split = ImageDataset.ValidationSplit)
    {
        var tag = SplitTag(split);
        using var idx = data.IndicesOf(split);
        if (idx.shape[0] < 2) throw new ArgumentException($"data set '{data.Name}' has {idx.shape[0]} {(split == ImageDataset.TrainSplit ? "training" : "validation")} images; FD-ResNet18 needs at least 2");
        using var val = data.Images.index_select(0, idx).contiguous();
        var hash = Convert.ToHexStringLower(SHA256.HashData(val.bytes))[..16];
        var name = UnsafeChars().Replace(Path.GetFileName(Path.TrimEndingDirectorySeparator(data.Name)), "_");
        return $"{name}-{data.Channels}x{val.shape[2]}x{val.shape[3]}-{tag}{idx.shape[0]}-{hash}-{ResNet18Features.Id}";
    }

    static string SplitTag(byte split) => split switch
    {
        ImageDataset.ValidationSplit => "val",
        ImageDataset.TrainSplit => "train",
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "use the train or validation split"),
    };

    /// <summary>Reads the reference of <paramref name="data"/>'s validation split from the cache, or computes and stores it.</summary>
    /// <remarks>With <paramref name="split"/> = <see cref="ImageDataset.TrainSplit"/>: the training split's reference (FD against it, nearest training neighbours).</remarks>
    public static RealReference GetOrCompute(ImageDataset data, ResNet18Features extractor, string? cacheDir = null, IProgress<int>? progress = null,
        byte split = ImageDataset.ValidationSplit)
    {
        var key = KeyOf(data, split);
        var shape = (data.Channels, (int)data.Images.shape[2], (int)data.Images.shape[3]);
        var path = Path.Combine(cacheDir ?? DefaultDir, key + ".safetensors");
        if (File.Exists(path))
        {
            var (tensors, metadata) = Safetensors.Load(path);
            if (metadata.GetValueOrDefault("key") == key && tensors.ContainsKey("features") && tensors.ContainsKey("mean") && tensors.ContainsKey("covariance"))
            {
                using var mean = tensors["mean"];
                using var cov = tensors["covariance"];
                var features = tensors["features"].DetachFromDisposeScope();
                return new RealReference
                {
                    Key = key, DataSet = data.Name, Features = features, ImageShape = shape, FromCache = true,
                    Statistics = new FeatureStatistics(mean, cov, features.shape[0]),
                };
            }
            foreach (var t in tensors.Values) t.Dispose();
        }
        Tensor computed;
        using (var idx = data.IndicesOf(split))
        using (var val = data.Images.index_select(0, idx))
            computed = extractor.Extract(val, progress).DetachFromDisposeScope();
        var stats = FeatureStatistics.Of(computed);
        Safetensors.Save(path,
            new Dictionary<string, Tensor> { ["features"] = computed, ["mean"] = stats.Mean, ["covariance"] = stats.Covariance },
            new Dictionary<string, string> { ["key"] = key, ["data_set"] = data.Name, ["feature_space"] = ResNet18Features.Id });
        return new RealReference { Key = key, DataSet = data.Name, Features = computed, Statistics = stats, ImageShape = shape };
    }

    /// <summary>
    /// The mean validation → nearest training distance in ResNet-18 features (<see cref="Memorization.MeanValidationDistance"/>),
    /// read from the cache or computed (on <paramref name="device"/>) and stored: it depends on the two references only, and at
    /// Fashion-MNIST's size (6,949 × 63,051 distances in 512 dimensions) it was most of an evaluation's metric time on
    /// the device (≈ 20 s of ≈ 40 s per <c>snce eval</c>, 2026-12-02). Keyed by both references' keys.
    /// </summary>
    public static double ValidationNearestTrainDistance(RealReference validation, RealReference train, string? cacheDir = null, Device? device = null)
    {
        var keys = validation.Key + "\n" + train.Key;
        var name = "nn-" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(keys)))[..16] + ".json";
        var path = Path.Combine(cacheDir ?? DefaultDir, name);
        if (File.Exists(path))
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
                var root = doc.RootElement;
                if (root.GetProperty("validation").GetString() == validation.Key && root.GetProperty("train").GetString() == train.Key)
                    return root.GetProperty("mean_distance").GetDouble();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
            {
                // A damaged entry is recomputed and overwritten below.
            }
        }
        var value = Memorization.MeanValidationDistance(validation, train, device);
        var json = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["validation"] = validation.Key, ["train"] = train.Key, ["mean_distance"] = value,
            ["validation_count"] = validation.Count, ["train_count"] = train.Count,
        });
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, json);
        return value;
    }

    [GeneratedRegex("[^A-Za-z0-9_.-]")] private static partial Regex UnsafeChars();
}
