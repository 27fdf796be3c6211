using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Tests.Models;

public class Rotary2dTests
{
    [Fact]
    public void AnglesAreRowAndColumnTimesTheFrequencies()
    {
        using var rope = new Rotary2d(prefix: 1, gridHeight: 3, gridWidth: 4, headDim: 8, ropeBase: 100);
        var (cos, sin) = rope.Tables(CPU);
        Assert.Equal([13, 4], cos.shape);
        var angles = atan2(sin, cos);
        Assert.Equal(0, angles[0].abs().max().item<float>());                              // the prefix slot: identity
        // Cell 6 = row 1, column 2; frequencies 100^0 = 1 and 100^(-1/2) = 0.1; layout [row·f, col·f].
        var expected = tensor(new[] { 1f, 0.1f, 2f, 0.2f });
        Assert.True(angles[1 + 6].allclose(expected, atol: 1e-6), angles[7].ToString(TorchSharp.TensorStringStyle.Julia));
    }

    [Fact]
    public void ScoresDependOnlyOnTheGridOffset()
    {
        using var rope = new Rotary2d(0, 4, 4, 8, 10000);
        var q = randn([1, 1, 1, 1, 8], generator: new Generator(1)).expand(1, 16, 1, 1, 8).contiguous();
        var k = randn([1, 1, 1, 1, 8], generator: new Generator(2)).expand(1, 16, 1, 1, 8).contiguous();
        var qr = rope.Apply(q, 0).view(16, 8);
        var kr = rope.Apply(k, 0).view(16, 8);
        float Score(int a, int b) => qr[a].dot(kr[b]).item<float>();
        // cells (0,0)->(1,2) and (2,1)->(3,3): the same offset (+1, +2).
        Assert.Equal(Score(0, 6), Score(9, 15), 4);
        Assert.NotEqual(Score(0, 6), Score(0, 9), 2);
    }
}
