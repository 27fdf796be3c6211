using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Support;

public class LeakCheckTests
{
    [Fact]
    public void DetectsATensorKeptAliveOutsideAScope()
    {
        var kept = new List<Tensor>();
        var growth = LeakCheck.LiveTensorGrowth(() => kept.Add(ones(3) * 2), repeats: 4);
        Assert.Equal(8, growth); // ones(3) and the product stay alive each call
        foreach (var t in kept) t.Dispose();
    }

    [Fact]
    public void AcceptsScopedWork()
    {
        LeakCheck.AssertNoLeak(() =>
        {
            using var scope = NewDisposeScope();
            var x = randn(4, 4).matmul(randn(4, 4)).sum();
            _ = x.item<float>();
        });
    }

    [Fact]
    public void FailsOnALeak()
    {
        var kept = new List<Tensor>();
        Assert.Throws<Xunit.Sdk.XunitException>(() => LeakCheck.AssertNoLeak(() => kept.Add(zeros(2))));
        foreach (var t in kept) t.Dispose();
    }
}
