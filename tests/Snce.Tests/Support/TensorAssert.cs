using static TorchSharp.torch;

namespace Snce.Tests.Support;

/// <summary>Tensor comparisons whose failure message says by how much they failed.</summary>
public static class TensorAssert
{
    /// <summary>Asserts <c>allclose(actual, expected, rtol, atol)</c>; on failure names the largest absolute difference.</summary>
    public static void Close(Tensor actual, Tensor expected, double rtol, double atol)
    {
        if (actual.allclose(expected, rtol, atol)) return;
        using var diff = (actual - expected).abs().max();
        Assert.Fail($"max diff {diff.item<float>()}");
    }
}
