using Snce.Native;
using static TorchSharp.torch;

namespace Snce.Tests.Native;

/// <summary>What of the NCCL binding runs without NCCL: the load error and the dtype mapping (values from nccl.h).</summary>
public class NcclTests
{
    [Fact]
    public void AMissingLibraryIsASetupErrorSayingHowToInstallIt()
    {
        var e = Assert.Throws<SnceSetupException>(() => Nccl.Load("/nonexistent/libnccl.so.2"));
        Assert.StartsWith("/nonexistent/libnccl.so.2 could not be loaded", e.Message);
        Assert.Contains("apt install libnccl2", e.Message);
    }

    [Fact]
    public void TheSystemLibraryLoadsOrFailsWithTheSetupError()
    {
        // On the CPU machines libnccl.so.2 is absent (the error path); on the GPU machines 2.28 is installed.
        try { Assert.InRange(Nccl.Load().Version(), 20000, 99999); }
        catch (SnceSetupException e) { Assert.StartsWith("libnccl.so.2 could not be loaded", e.Message); }
    }

    [Theory]
    [InlineData(ScalarType.Int8, 0)]
    [InlineData(ScalarType.Byte, 1)]
    [InlineData(ScalarType.Int32, 2)]
    [InlineData(ScalarType.Int64, 4)]
    [InlineData(ScalarType.Float16, 6)]
    [InlineData(ScalarType.Float32, 7)]
    [InlineData(ScalarType.Float64, 8)]
    [InlineData(ScalarType.BFloat16, 9)]
    public void DtypesMapToNcclsEnum(ScalarType dtype, int nccl) => Assert.Equal(nccl, (int)Nccl.TypeOf(dtype));

    [Fact]
    public void OtherDtypesAreRefusedByName()
    {
        var e = Assert.Throws<NotSupportedException>(() => Nccl.TypeOf(ScalarType.Bool));
        Assert.StartsWith("NCCL has no type for Bool", e.Message);
    }
}
