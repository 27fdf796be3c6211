using Snce.Data;

namespace Snce.Tests.Data;

public class DataSplitTests
{
    static readonly string[] Keys = [.. Enumerable.Range(0, 5000).Select(i => $"{i % 10}/{i / 10}")];

    [Fact]
    public void SameSeedGivesTheSameSplitAndADifferentSeedAnother()
    {
        var a = DataSplit.Assign(Keys, 0.1, seed: 0);
        Assert.Equal(a, DataSplit.Assign(Keys, 0.1, seed: 0));
        var b = DataSplit.Assign(Keys, 0.1, seed: 1);
        Assert.NotEqual(a, b);
        Assert.InRange(a.Count(s => s == 1), 430, 570); // 10% of 5,000 ± 3.5σ
        Assert.InRange(a.Zip(b).Count(p => p.First != p.Second), 700, 1100); // independent draws differ on ~18%
    }

    [Fact]
    public void AKeysSplitDoesNotDependOnTheOtherImages()
    {
        var all = DataSplit.Assign(Keys, 0.2, seed: 3);
        var half = DataSplit.Assign(Keys[..2500], 0.2, seed: 3);
        Assert.Equal(all[..2500], half);
    }

    [Fact]
    public void ImagesSharingAKeyShareASplit()
    {
        string[] keys = [.. Enumerable.Range(0, 300).Select(i => $"emoji{i / 3}")]; // three skin tones per emoji
        var split = DataSplit.Assign(keys, 0.3, seed: 0);
        for (var i = 0; i < keys.Length; i += 3)
            Assert.True(split[i] == split[i + 1] && split[i] == split[i + 2]);
    }

    [Fact]
    public void ATinySetStillGetsBothSplits()
    {
        for (var seed = 0; seed < 50; seed++)
        {
            var split = DataSplit.Assign(["a", "b", "c"], 0.1, seed);
            Assert.Contains((byte)0, split);
            Assert.Contains((byte)1, split);
        }
        Assert.Equal([0, 0], DataSplit.Assign(["a", "b"], 0.0, 0));
        Assert.Throws<ArgumentException>(() => DataSplit.Assign(["a"], 1.0, 0));
    }

    [Fact]
    public void ClassOrdinalKeysCountWithinEachClass()
    {
        var keys = DataSplit.Keys(DataSplit.ClassOrdinalKey, [3, 1, 3, 3, 1], new Dictionary<string, string[]>());
        Assert.Equal(["3/0", "1/0", "3/1", "3/2", "1/1"], keys);
        Assert.Equal(["x", "y"], DataSplit.Keys(DataSplit.AttributeKey("file"), [0, 0], new Dictionary<string, string[]> { ["file"] = ["x", "y"] }));
        Assert.Throws<InvalidDataException>(() => DataSplit.Keys("attribute:nope", [0], new Dictionary<string, string[]>()));
    }

    [Fact]
    public void TheRuleIsPinned()
    {
        // Golden values from an independent Python implementation of the documented rule (docs/data.md):
        // u = (SplitMix64(FNV-1a-64(utf8 key) ^ SplitMix64(seed)) >> 11) / 2^53. The rule is part of the cache
        // format; changing it would move held-out images.
        double[] python = [0.093948, 0.958024, 0.745825, 0.802756, 0.028339, 0.123316, 0.022516, 0.649022];
        Assert.Equal(python, Enumerable.Range(0, 8).Select(i => Math.Round(DataSplit.Uniform($"{i}/0", 0), 6)));
    }
}
