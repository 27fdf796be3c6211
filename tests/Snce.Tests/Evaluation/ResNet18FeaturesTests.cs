using Snce.Evaluation;
using Snce.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

public class ResNet18FeaturesTests(ITestOutputHelper output)
{
    [Fact]
    public void FeaturesArePooled512VectorsAndDeterministic()
    {
        using var images = RealSample.Images.narrow(0, 0, 12);
        using var a = new ResNet18Features(batchSize: 5);
        using var first = a.Extract(images);
        using var again = a.Extract(images);
        Assert.Equal([12L, 512L], first.shape);
        Assert.Equal(ScalarType.Float32, first.dtype);
        Assert.True(first.eq(again).all().item<bool>(), "two runs on the same images differ");
        Assert.True(first.isfinite().all().item<bool>());
        Assert.True(first.min().item<float>() >= 0, "average-pooled ReLU activations cannot be negative");
        Assert.True(first.std().item<float>() > 0.1, "features are (nearly) constant");
        // The batch size only groups the work: one image per call gives the same vectors.
        using var single = new ResNet18Features(batchSize: 1);
        using var one = single.Extract(images);
        TensorAssert.Close(one, first, rtol: 1e-4, atol: 1e-4);
    }

    [Fact]
    public void TorchSharpBackendAgreesWithOnnxRuntime()
    {
        // The same ONNX weights interpreted by TorchSharp (the GPU path) against ONNX Runtime on 8 real images
        // and 2 random-noise RGB images (values far from the Fashion-MNIST range).
        using var gray = RealSample.Images.narrow(0, 0, 8).expand(-1, 3, -1, -1);
        using var noise = randint(0, 256, [2, 3, 28, 28], generator: new Generator(9)).to(ScalarType.Byte);
        using var images = cat([gray, noise], 0);
        using var onnx = new ResNet18Features(FeatureBackend.Onnx, batchSize: 4);
        using var torchSharp = new ResNet18Features(FeatureBackend.Torch, batchSize: 4);
        using var a = onnx.Extract(images);
        using var b = torchSharp.Extract(images);
        var maxDiff = (a - b).abs().max().item<float>();
        output.WriteLine($"max |onnx − torch| = {maxDiff:E2}, feature scale {a.abs().max().item<float>():F2}");
        Assert.True(a.allclose(b, rtol: 1e-4, atol: 1e-4), $"max diff {maxDiff}"); // measured 1.1e-5 at a feature scale of ~20
    }

    [Fact]
    public void GrayAndItsRgbCopyGiveTheSameFeatures()
    {
        using var gray = RealSample.Images.narrow(0, 0, 4);
        using var rgb = gray.expand(-1, 3, -1, -1).contiguous();
        using var extractor = new ResNet18Features();
        using var fg = extractor.Extract(gray);
        using var fc = extractor.Extract(rgb);
        Assert.True(fg.allclose(fc, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void ResizeUpsamplesBilinearlyTo224()
    {
        using var img = tensor(new byte[] { 0, 255, 0, 255 }, [1, 1, 2, 2]);
        using var x = ResNet18Features.Resize(img);
        Assert.Equal([1L, 3L, 224L, 224L], x.shape);
        Assert.Equal(0f, x[0, 0, 0, 0].item<float>());      // corners keep their values (half-pixel centers, clamped)
        Assert.Equal(255f, x[0, 2, 0, 223].item<float>());
        Assert.Equal(127.5f, x[0, 1, 100, 111].item<float>() + x[0, 1, 100, 112].item<float>() - 127.5f, 1); // symmetric around the middle
    }

    [Fact]
    public void FeaturesSeparateRealClasses()
    {
        // A working ImageNet network puts Fashion-MNIST classes in distinct regions: nearest class centroid
        // (centroids from the first 40 images of each class, tested on the other 20) is far above chance (10%).
        var f = RealSample.Features;
        var labels = RealSample.Labels;
        var trainRows = arange(400);
        var testRows = arange(400, 600);
        using var centroids = stack(Enumerable.Range(0, 10).Select(c =>
            f.index_select(0, trainRows).index_select(0, nonzero(labels.index_select(0, trainRows).eq(c)).squeeze(1)).mean([0])).ToArray());
        using var predicted = cdist(f.index_select(0, testRows), centroids).argmin(1);
        var accuracy = predicted.eq(labels.index_select(0, testRows)).to(ScalarType.Float64).mean().item<double>();
        output.WriteLine($"nearest-centroid accuracy in FD-ResNet18 space: {accuracy:P1}");
        Assert.True(accuracy > 0.6, $"accuracy {accuracy:P1}");
    }

    [Fact]
    public void FdBetweenRandomHalvesOfTheRealSampleIsSmallAndStable()
    {
        var f = RealSample.Features;
        double Halves(ulong seed)
        {
            using var perm = randperm(600, generator: new Generator(seed));
            using var a = f.index_select(0, perm.narrow(0, 0, 300));
            using var b = f.index_select(0, perm.narrow(0, 300, 300));
            return FrechetDistance.Compute(a, b);
        }
        var fds = new[] { Halves(1), Halves(2), Halves(3) };
        // Against a set that really differs: the same 300 count, but only five of the ten classes.
        using var firstClasses = nonzero(RealSample.Labels.lt(5)).squeeze(1);
        using var lastClasses = nonzero(RealSample.Labels.ge(5)).squeeze(1);
        var different = FrechetDistance.Compute(f.index_select(0, firstClasses), f.index_select(0, lastClasses));
        output.WriteLine($"FD-ResNet18 halves: {string.Join(", ", fds.Select(v => v.ToString("F2")))}; classes 0-4 vs 5-9: {different:F2}");
        // Measured: halves 98.9, 96.0, 93.0; classes 0-4 vs 5-9: 380.8. At 300 samples in 512 dimensions the halves'
        // FD is mostly the estimator's small-sample bias (it shrinks with n), hence: compare FDs only at equal n.
        Assert.True(fds.Max() / fds.Min() < 1.25, "FD of random halves varies too much with the seed");
        Assert.True(different > 3 * fds.Max(), $"FD of disjoint class halves {different:F2} is not clearly above random halves {fds.Max():F2}");
    }

    [Fact]
    public void WrongImageShapesFailClearly()
    {
        using var extractor = new ResNet18Features();
        using var floats = zeros(2, 3, 28, 28);
        Assert.Contains("uint8 [N, C, H, W]", Assert.Throws<ArgumentException>(() => extractor.Extract(floats)).Message);
        using var fourChannels = zeros([2, 4, 28, 28], ScalarType.Byte);
        Assert.Contains("got Byte [2, 4, 28, 28]", Assert.Throws<ArgumentException>(() => extractor.Extract(fourChannels)).Message);
    }
}
