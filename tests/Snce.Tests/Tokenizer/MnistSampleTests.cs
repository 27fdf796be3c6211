using Snce.Data;
using Snce.Tests.Support;

namespace Snce.Tests.Tokenizer;

public class MnistSampleTests
{
    [Fact]
    public void FixtureIsTheDocumentedRealMnistSample()
    {
        using var data = MnistSample.Load();
        Assert.Equal(250, data.Count);
        Assert.Equal((1, 28), (data.Channels, data.Size));
        Assert.Equal(Enumerable.Repeat(25, 10), data.Labels.data<long>().ToArray().GroupBy(l => l).Select(g => g.Count()));
        // The script's split (written in Python) is DataSplit's rule: key "label/ordinal", seed 0, fraction 0.2.
        var keys = DataSplit.Keys(DataSplit.ClassOrdinalKey, data.Labels.data<long>().ToArray(), data.Attributes);
        Assert.Equal(DataSplit.Assign(keys, 0.2, 0), data.Split.data<byte>().ToArray());
        // Real digits: mostly black background with bright strokes.
        using var mean = data.Images.to(TorchSharp.torch.ScalarType.Float32).mean();
        Assert.InRange(mean.item<float>(), 20, 60);
    }
}
