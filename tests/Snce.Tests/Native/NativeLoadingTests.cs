using System.Text.Json;
using Snce.Native;
using Snce.Tests.Support;

namespace Snce.Tests.Native;

public class NativeLoadingTests
{
    /// <summary>Whether the libstdc++ this process uses defines GLIBCXX_3.4.32 (read from the file, independently of Snce).</summary>
    static bool SystemLibstdcxxHas3432()
    {
        var path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Last())
            .First(p => p.Contains("libstdc++.so", StringComparison.Ordinal));
        var bytes = File.ReadAllBytes(path);
        return bytes.AsSpan().IndexOf("GLIBCXX_3.4.32\0"u8) >= 0;
    }

    [Fact]
    public void AFreshProcessLoadsTorchSharpAndAppliesTheFixOnlyWhereNeeded()
    {
        using var cache = new TempDir();
        var env = new Dictionary<string, string> { ["SNCE_CACHE"] = cache.Path };
        var first = CliRunner.RunProcess(env, "info", "--json", "--check", "--device", "cpu");
        Assert.True(first.ExitCode == 0, first.Stderr + first.Stdout);
        using var doc = JsonDocument.Parse(first.Stdout);
        var report = doc.RootElement.GetProperty("report");
        var fixApplied = report.GetProperty("glibcxx_fix_applied").GetBoolean();
        Assert.Equal(!SystemLibstdcxxHas3432(), fixApplied);
        Assert.True(doc.RootElement.GetProperty("check").GetProperty("autograd_max_error").GetDouble() < 1e-3);

        var shim = report.GetProperty("libtorchsharp_path").GetString()!;
        if (fixApplied)
        {
            Assert.StartsWith(cache.Path, shim);
            var written = File.GetLastWriteTimeUtc(shim);
            var second = CliRunner.RunProcess(env, "info", "--json", "--device", "cpu");
            Assert.Equal(0, second.ExitCode);
            Assert.Contains(shim, second.Stdout);
            Assert.Equal(written, File.GetLastWriteTimeUtc(shim)); // idempotent: the cached copy is reused
            Assert.Single(Directory.GetFiles(cache.Path, "*.so*", SearchOption.AllDirectories));
        }
    }

    [Fact]
    public void ThisProcessLoadedTorchSharp()
    {
        var status = TorchRuntime.Status;
        Assert.NotNull(status);
        using var t = TorchSharp.torch.arange(10);
        Assert.Equal(45, t.sum().item<long>());
    }

    [Fact]
    public void ABadLibtorchDirectoryIsNamedInTheError()
    {
        var e = Assert.Throws<SnceSetupException>(() => LibTorchLocator.Validate("/nonexistent/torch/lib", "--libtorch"));
        Assert.Contains("/nonexistent/torch/lib", e.Message);
        using var empty = new TempDir();
        e = Assert.Throws<SnceSetupException>(() => LibTorchLocator.Validate(empty.Path, "SNCE_LIBTORCH"));
        Assert.Contains("libtorch_cpu.so", e.Message);
    }

    [Theory]
    [InlineData("auto", "auto", null)]
    [InlineData("CPU", "cpu", null)]
    [InlineData("cuda", "cuda", null)]
    [InlineData("cuda:3", "cuda", 3)]
    public void DeviceRequestsParse(string text, string kind, int? index)
    {
        Assert.Equal(new DeviceRequest(kind, index), DeviceRequest.Parse(text));
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    public void BadDevicesAreRejectedWithTheAllowedValues(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => DeviceRequest.Parse(text));
        Assert.Contains(DeviceRequest.Allowed, e.Message);
    }
}
