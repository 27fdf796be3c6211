using static TorchSharp.torch;

namespace Snce.Tests.Support;

public class TensorAssertTests
{
    [Fact]
    public void CloseTensorsPassAndFarOnesFailNamingTheLargestDifference()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new[] { 1f, 2f, 3f });
        TensorAssert.Close(a + 1e-6f, a, rtol: 0, atol: 1e-5);
        var e = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => TensorAssert.Close(a + tensor(new[] { 0f, 0.25f, -0.5f }), a, rtol: 0, atol: 1e-5));
        Assert.Contains("max diff 0.5", e.Message);
    }
}
