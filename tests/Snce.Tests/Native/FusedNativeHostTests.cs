using System.Runtime.InteropServices;
using Snce.Losses.Fused;
using Snce.Native;
using Snce.Native.Cuda;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Native;

/// <summary>Host-side logic of the fused loss's CUDA path that can be checked without a GPU.</summary>
public class FusedNativeHostTests
{
    [Theory]
    [InlineData(1, 4, 128)]
    [InlineData(4096, 8, 128)]
    [InlineData(16384, 8, 256)]
    [InlineData(65536, 8, 512)]
    [InlineData(262144, 8, 512)]
    [InlineData(16384, 4, 512)]
    [InlineData(5000, 4, 256)]
    public void ThreadsPerRowBlock(long k, int vector, int threads) => Assert.Equal(threads, RowLaunch.Threads(k, vector));

    [Fact]
    public void KernelSelectsTopKOnlyWhereItsFirstThresholdHolds()
    {
        Assert.Null(FusedKernelRows.UnsupportedSelect(ScalarType.BFloat16, 32, 262144));
        Assert.Null(FusedKernelRows.UnsupportedSelect(ScalarType.Float32, 5, 37));      // all scores fit the slots
        Assert.Null(FusedKernelRows.UnsupportedSelect(ScalarType.BFloat16, 128, 1024)); // K = 8k: 128 threads own scores
        Assert.Contains("up to 128", FusedKernelRows.UnsupportedSelect(ScalarType.BFloat16, 129, 262144));
        // K < 8k, but all scores fit the 2,048 candidate slots (with k ≤ 128 every K is one case or the other).
        Assert.Null(FusedKernelRows.UnsupportedSelect(ScalarType.BFloat16, 128, 1000));
        Assert.Contains("fp32 or bf16", FusedKernelRows.UnsupportedSelect(ScalarType.Float64, 8, 4096));
    }

    [Fact]
    public void KernelNamesAndVectorWidths()
    {
        Assert.Equal("snce_rows_bf16_bf16", RowLaunch.KernelName(ScalarType.BFloat16, ScalarType.BFloat16));
        Assert.Equal("snce_rows_f32_bf16", RowLaunch.KernelName(ScalarType.Float32, ScalarType.BFloat16));
        Assert.Equal("snce_rows_topk_bf16_f32", RowLaunch.KernelName(ScalarType.BFloat16, ScalarType.Float32, select: true));
        Assert.Equal(8, RowLaunch.VectorWidth(ScalarType.BFloat16, ScalarType.BFloat16));
        Assert.Equal(4, RowLaunch.VectorWidth(ScalarType.BFloat16, ScalarType.Float32));
        Assert.Throws<ArgumentException>(() => RowLaunch.KernelName(ScalarType.Float64, ScalarType.Float32));
        Assert.Throws<ArgumentOutOfRangeException>(() => RowLaunch.Threads(0, 4));
        Assert.NotNull(FusedKernelRows.Unsupported(ScalarType.Float64, TargetKind.Hard, ScalarType.Float64, 0));
        Assert.NotNull(FusedKernelRows.Unsupported(ScalarType.BFloat16, TargetKind.TopK, ScalarType.BFloat16, FusedKernelRows.MaxTopK + 1));
        Assert.Null(FusedKernelRows.Unsupported(ScalarType.BFloat16, TargetKind.Dense, ScalarType.Float32, 0));
    }

    [Fact]
    public void RowArgsHasTheKernelsLayout()
    {
        // struct RowArgs in SnceRows.cu: 9 pointers, 4 int64, float, 3 int32 = 120 bytes, no padding.
        Assert.Equal(120, Marshal.SizeOf<FusedKernelRows.RowArgs>());
        Assert.Equal(64, (int)Marshal.OffsetOf<FusedKernelRows.RowArgs>(nameof(FusedKernelRows.RowArgs.Stats)));
        Assert.Equal(96, (int)Marshal.OffsetOf<FusedKernelRows.RowArgs>(nameof(FusedKernelRows.RowArgs.K)));
        Assert.Equal(104, (int)Marshal.OffsetOf<FusedKernelRows.RowArgs>(nameof(FusedKernelRows.RowArgs.ScoreScale)));
        Assert.Equal(112, (int)Marshal.OffsetOf<FusedKernelRows.RowArgs>(nameof(FusedKernelRows.RowArgs.TopK)));
        Assert.Contains("struct RowArgs", FusedKernelRows.Source);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    public void DataPointerIsStorageStartPlusOffset(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var t = arange(24, dtype: ScalarType.Float32).reshape(4, 6).to(dtype);
        var view = t.narrow(0, 1, 2).narrow(1, 2, 3); // element [1, 2]: storage offset 8
        Assert.Equal(8, view.storage_offset());
        var size = TensorMemory.ElementSize(dtype);
        Assert.Equal(TensorMemory.StoragePointer(t), TensorMemory.DataPointer(t));
        Assert.Equal(TensorMemory.StoragePointer(view) + 8 * size, TensorMemory.DataPointer(view));
        // The bytes there are element [1, 2] (= 8) of this dtype.
        var p = TensorMemory.DataPointer(view);
        double value = dtype switch
        {
            ScalarType.Float32 => BitConverter.Int32BitsToSingle(Marshal.ReadInt32(p)),
            ScalarType.BFloat16 => BitConverter.Int32BitsToSingle(Marshal.ReadInt16(p) << 16),
            _ => Marshal.ReadInt64(p),
        };
        Assert.Equal(8.0, value);
    }

    [Fact]
    public void NvrtcCandidatesCoverEnvLoaderPathCudaAndPyTorch()
    {
        var c = NvrtcLocator.Candidates("/opt/x/libnvrtc.so.13", "/venv/lib/python3.12/site-packages/torch/lib", "/cuda");
        Assert.Equal("/opt/x/libnvrtc.so.13", c[0]);
        Assert.Equal("libnvrtc.so.13", c[1]); // bare name: LD_LIBRARY_PATH and the loader cache
        Assert.Contains("/cuda/targets/x86_64-linux/lib/libnvrtc.so.13", c);
        Assert.Contains("/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13", c);
        Assert.Contains("/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13", c);
        Assert.True(c.ToList().IndexOf("/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13") < c.ToList().IndexOf("/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13"));
        Assert.DoesNotContain(NvrtcLocator.Candidates(null, null, null), s => s.Contains("site-packages"));
    }

    [Fact]
    public void NvrtcOpensTheFirstLoadableCandidateAndOtherwiseSaysWhatToDo()
    {
        using var dir = new TempDir();
        var present = dir["libnvrtc.so.13"];
        File.WriteAllText(present, "");
        var tried = new List<string>();
        var (handle, path) = NvrtcLocator.Open([dir["missing.so"], "libnvrtc.so.13", present], p => { tried.Add(p); return p == present ? 42 : 0; });
        Assert.Equal((42, present), (handle, path));
        Assert.Equal(["libnvrtc.so.13", present], tried); // a path that does not exist is not even tried
        var e = Assert.Throws<SnceSetupException>(() => NvrtcLocator.Open(["libnvrtc.so.13", dir["nope/libnvrtc.so.13"]], _ => 0));
        Assert.Contains("LD_LIBRARY_PATH", e.Message);
        Assert.Contains(NvrtcLocator.EnvironmentVariable, e.Message);
        Assert.Contains(dir["nope/libnvrtc.so.13"], e.Message);
        Assert.Contains("Backend = Torch", e.Message);
    }
}
