using Snce.IO;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.IO;

public class SafetensorsTests
{
    [Fact]
    public void RoundTripsTensorsOfEveryKindAndMetadata()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["w"] = randn(3, 4),
            ["b16"] = randn(5).to(ScalarType.BFloat16),
            ["idx"] = arange(7),
            ["scalar"] = tensor(3.5),
            ["empty"] = zeros(0, 4),
            ["mask"] = tensor(new[] { true, false }),
        };
        Safetensors.Save(dir["m.safetensors"], tensors, new Dictionary<string, string> { ["step"] = "12" });
        var (back, meta) = Safetensors.Load(dir["m.safetensors"]);
        Assert.Equal("12", meta["step"]);
        Assert.Equal(tensors.Keys.Order(), back.Keys.Order());
        foreach (var (k, t) in tensors)
        {
            Assert.Equal(t.dtype, back[k].dtype);
            Assert.Equal(t.shape, back[k].shape);
            Assert.True(t.equal(back[k]).all().item<bool>(), k);
        }
    }

    [Fact]
    public void HeaderFollowsTheSpec()
    {
        // The header must be the JSON the Python package reads: 8-byte LE length, then {"name": {dtype, shape, data_offsets}}.
        using var dir = new TempDir();
        using var t = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        Safetensors.Save(dir["a.safetensors"], new Dictionary<string, Tensor> { ["x"] = t });
        var bytes = File.ReadAllBytes(dir["a.safetensors"]);
        var n = (int)BitConverter.ToUInt64(bytes, 0);
        var header = System.Text.Encoding.UTF8.GetString(bytes, 8, n).TrimEnd();
        Assert.Equal("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", header);
        Assert.Equal(8 + n + 24, bytes.Length);
        Assert.Equal(5f, BitConverter.ToSingle(bytes, 8 + n + 20));
    }

    [Fact]
    public void DamagedFilesFailClearly()
    {
        using var dir = new TempDir();
        using var t = randn(100);
        Safetensors.Save(dir["a.safetensors"], new Dictionary<string, Tensor> { ["x"] = t });
        var bytes = File.ReadAllBytes(dir["a.safetensors"]);
        File.WriteAllBytes(dir["cut.safetensors"], bytes[..^16]);
        Assert.Contains("damaged", Assert.Throws<InvalidDataException>(() => Safetensors.Load(dir["cut.safetensors"])).Message);
        File.WriteAllText(dir["junk.safetensors"], "this is not a safetensors file");
        Assert.Throws<InvalidDataException>(() => Safetensors.Load(dir["junk.safetensors"]));
    }
}
