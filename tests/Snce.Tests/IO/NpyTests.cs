using Snce.IO;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.IO;

public class NpyTests
{
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Float16)]
    public void RoundTripsEveryDtypeAndShape(ScalarType dtype)
    {
        using var dir = new TempDir();
        foreach (long[] shape in new[] { new long[] { }, [7], [3, 5], [2, 3, 4] })
        {
            using var t = (randn(shape) * 50).to(dtype);
            Npy.Save(dir["a.npy"], t);
            using var back = Npy.Load(dir["a.npy"]);
            Assert.Equal(dtype, back.dtype);
            Assert.Equal(shape, back.shape);
            Assert.True(back.equal(t).all().item<bool>());
        }
    }

    [Fact]
    public void ReadsAHandWrittenNumpyHeader()
    {
        // Bytes as numpy.save writes np.array([[1, 2], [3, 4]], dtype='<i8'): magic, v1.0, header padded to 64.
        using var dir = new TempDir();
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }";
        header = header.PadRight(64 - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0 };
        bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(header));
        foreach (var v in new long[] { 1, 2, 3, 4 }) bytes.AddRange(BitConverter.GetBytes(v));
        File.WriteAllBytes(dir["h.npy"], bytes.ToArray());
        using var t = Npy.Load(dir["h.npy"]);
        Assert.Equal(new long[] { 2, 2 }, t.shape);
        Assert.Equal(3L, t[1, 0].item<long>());
    }

    [Fact]
    public void BadFilesFailWithTheReason()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["x.npy"], "hello");
        Assert.Contains("not a .npy file", Assert.Throws<InvalidDataException>(() => Npy.Load(dir["x.npy"])).Message);
        Assert.Throws<FileNotFoundException>(() => Npy.Load(dir["missing.npy"]));
        using var t = ones(4);
        Npy.Save(dir["t.npy"], t);
        File.AppendAllText(dir["t.npy"], "junk");
        Assert.Contains("bytes after", Assert.Throws<InvalidDataException>(() => Npy.Load(dir["t.npy"])).Message);
        var trunc = File.ReadAllBytes(dir["t.npy"])[..^10];
        File.WriteAllBytes(dir["u.npy"], trunc);
        Assert.Contains("[4] Float32 array (16 bytes) but only 10 bytes follow", Assert.Throws<InvalidDataException>(() => Npy.Load(dir["u.npy"])).Message);
    }
}
