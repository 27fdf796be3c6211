using Snce.Native;

namespace Snce.Tests.Native;

public class ElfVersionPatchTests
{
    static string Shim => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    [Fact]
    public void TheShippedShimRequiresGlibcxx3432Strongly()
    {
        var reqs = ElfVersionPatch.Requirements(File.ReadAllBytes(Shim));
        var r = Assert.Single(reqs, r => r.Version == TorchRuntime.MissingGlibcxx);
        Assert.Equal("libstdc++.so.6", r.Library);
        Assert.False(r.Weak);
        Assert.Contains(reqs, q => q.Version.StartsWith("GLIBC_", StringComparison.Ordinal));
    }

    [Fact]
    public void MakeWeakFlipsOnlyThatFlagAndIsIdempotent()
    {
        var original = File.ReadAllBytes(Shim);
        var bytes = (byte[])original.Clone();
        Assert.Equal(ElfVersionPatch.Outcome.Patched, ElfVersionPatch.MakeWeak(bytes, TorchRuntime.MissingGlibcxx));

        var changed = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] != original[i]).ToList();
        var index = Assert.Single(changed);
        Assert.Equal(original[index] | 0x2, bytes[index]);

        var after = ElfVersionPatch.Requirements(bytes);
        Assert.True(after.Single(r => r.Version == TorchRuntime.MissingGlibcxx).Weak);
        Assert.All(after.Where(r => r.Version != TorchRuntime.MissingGlibcxx), r => Assert.False(r.Weak));
        Assert.Equal(ElfVersionPatch.Outcome.AlreadyWeak, ElfVersionPatch.MakeWeak(bytes, TorchRuntime.MissingGlibcxx));
        Assert.Equal(ElfVersionPatch.Outcome.NotRequired, ElfVersionPatch.MakeWeak(bytes, "GLIBCXX_9.9.99"));
    }

    [Fact]
    public void RejectsFilesThatAreNotElf()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionPatch.Requirements("not an elf file at all, just text ......................................."u8.ToArray()));
    }
}
