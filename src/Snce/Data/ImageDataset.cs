using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>
/// Images held in memory as uint8 [M, C, H, W] with labels and a fixed train/validation split.
/// Every verb that reads images gets one of these (built-in data sets and image folders alike).
/// </summary>
public sealed class ImageDataset : IDisposable
{
    /// <summary>Values of <see cref="Split"/>: 0 for a training image, 1 for a held-out (validation) one.</summary>
    public const byte TrainSplit = 0, ValidationSplit = 1;


    /// <summary>Data set name (mnist, fashion-mnist, emoji-twitter, ...) or the image folder's path.</summary>
    public required string Name { get; init; }
    /// <summary>uint8 [M, C, H, W], C = 1 (gray) or 3 (RGB), values 0..255.</summary>
    public required Tensor Images { get; init; }
    /// <summary>int64 [M]: class index into <see cref="Classes"/>, −1 when unlabeled.</summary>
    public required Tensor Labels { get; init; }
    /// <summary>uint8 [M]: 0 = train, 1 = validation; fixed by a seed and stored with the cache.</summary>
    public required Tensor Split { get; init; }
    /// <summary>Class names, index = label.</summary>
    public required string[] Classes { get; init; }
    /// <summary>Optional per-image string attributes (e.g. emoji name, keywords, code point, vendor); keys map to arrays of length M.</summary>
    public IReadOnlyDictionary<string, string[]> Attributes { get; init; } = new Dictionary<string, string[]>();
    /// <summary>Credit line to show with these images or samples trained on them (e.g. the emoji artwork's licence); null when none is asked.</summary>
    public string? Credit { get; init; }
    /// <summary>A usage restriction to print whenever the images are used (e.g. not licensed for commercial use); null when none.</summary>
    public string? Notice { get; init; }
    /// <summary>Files an image folder held that could not be used (corrupt, not an image, outside a class folder), with the reason.</summary>
    public IReadOnlyList<SkippedFile> Skipped { get; init; } = [];

    /// <summary>M, the number of images (both splits).</summary>
    public int Count => (int)Images.shape[0];
    /// <summary>C: 1 (gray) or 3 (RGB).</summary>
    public int Channels => (int)Images.shape[1];
    /// <summary>Image side in pixels (images are square: H = W).</summary>
    public int Size => (int)Images.shape[2];


    /// <summary>Row indices (int64) of one split.</summary>
    public Tensor IndicesOf(byte split)
    {
        using var mask = Split == split;
        using var rows = nonzero(mask);
        return rows.squeeze(1);
    }

    /// <summary>uint8 [.., C, H, W] → float32 in [−1, 1] (the tokenizer's input range).</summary>
    public static Tensor ToModelRange(Tensor uint8Images) => uint8Images.to(ScalarType.Float32).div(127.5).sub(1.0);

    /// <summary>float in [−1, 1] → uint8 [0, 255] (rounded, clamped).</summary>
    public static Tensor FromModelRange(Tensor images) => images.add(1.0).mul(127.5).round().clamp(0, 255).to(ScalarType.Byte);

    /// <summary>Images per class in one split (index = label; unlabeled images are not counted).</summary>
    public int[] CountPerClass(byte split)
    {
        var counts = new int[Classes.Length];
        var splits = Split.data<byte>();
        var labels = Labels.data<long>();
        for (var i = 0; i < Count; i++)
            if (splits[i] == split && labels[i] >= 0 && labels[i] < counts.Length) counts[labels[i]]++;
        return counts;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
        Split.Dispose();
    }
}

/// <summary>A file that was left out of a data set, and why.</summary>
public sealed record SkippedFile(string Path, string Reason);
