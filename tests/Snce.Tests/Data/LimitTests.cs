using Snce.Data;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Data;

public class LimitTests
{
    [Fact]
    public void LimitTakesAFixedSubsetAcrossClassesNotTheFirstImages()
    {
        // The cache is stored class by class (25 of each digit), so "the first 30" would be digits 0 and 1 only.
        using var all = MnistSample.Load();
        using var a = DataSets.Load(MnistSample.Dir, new DataOptions { Limit = 30 });
        using var b = DataSets.Load(MnistSample.Dir, new DataOptions { Limit = 30 });
        using var trainA = a.IndicesOf(ImageDataset.TrainSplit);
        Assert.Equal(30, trainA.shape[0]);
        using var trainLabels = a.Labels.index_select(0, trainA);
        Assert.True(trainLabels.unique().Item1.shape[0] >= 7, "a 30-image subset of 10 balanced classes should hold most classes");
        Assert.True(a.Images.equal(b.Images).all().item<bool>(), "the subset must be the same in every command");
        using var valA = a.IndicesOf(ImageDataset.ValidationSplit);
        using var valAll = all.IndicesOf(ImageDataset.ValidationSplit);
        Assert.Equal(Math.Min(30, valAll.shape[0]), valA.shape[0]);
    }
}
