using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Tests.Evaluation;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Data;

/// <summary>Built-in data sets joined with '+' (<c>emoji-twitter+emoji-google</c>): both vendors' artwork as one training set.</summary>
public class DataSetUnionTests
{
    [Fact]
    public void TwoEmojiVendorsStackAsOneSetWithTheSameHeldOutEmoji()
    {
        using var dir = new TempDir();
        var options = new DataOptions { DataDir = VendorClassifierTests.FetchTwoVendors(dir), Size = 16 };
        using var twitter = DataSets.Load("emoji-twitter", options);
        using var google = DataSets.Load("emoji-google", options);
        using var both = DataSets.Load("emoji-twitter+emoji-google", options);
        Assert.Equal("emoji-twitter+emoji-google", both.Name);
        Assert.Equal(twitter.Count + google.Count, both.Count);
        Assert.Equal(twitter.Classes, both.Classes);
        // Stacked in the order named: the first part's images, labels and split, then the second's.
        Assert.Equal(twitter.Images.data<byte>().ToArray(), both.Images.narrow(0, 0, twitter.Count).contiguous().data<byte>().ToArray());
        Assert.Equal(google.Images.data<byte>().ToArray(), both.Images.narrow(0, twitter.Count, google.Count).contiguous().data<byte>().ToArray());
        Assert.Equal(twitter.Labels.data<long>().ToArray().Concat(google.Labels.data<long>().ToArray()), both.Labels.data<long>().ToArray());
        Assert.Equal(Enumerable.Repeat("emoji-twitter", twitter.Count).Concat(Enumerable.Repeat("emoji-google", google.Count)), both.Attributes["source"]);
        Assert.Equal(twitter.Attributes["name"].Concat(google.Attributes["name"]), both.Attributes["name"]);
        // An emoji held out for one vendor is held out for the other: no held-out emoji is trained on in any style.
        var split = both.Split.data<byte>().ToArray();
        var unified = both.Attributes["unified"];
        var held = Enumerable.Range(0, both.Count).Where(i => split[i] == ImageDataset.ValidationSplit).Select(i => unified[i]).ToHashSet();
        var trained = Enumerable.Range(0, both.Count).Where(i => split[i] == ImageDataset.TrainSplit).Select(i => unified[i]).ToHashSet();
        Assert.NotEmpty(held);
        Assert.Empty(held.Intersect(trained));
        Assert.Contains("Twemoji", both.Credit);
        Assert.Contains("Noto", both.Credit);
    }

    [Fact]
    public void BadUnionsAreRefusedNamingTheProblem()
    {
        using var dir = new TempDir();
        var options = new DataOptions { DataDir = VendorClassifierTests.FetchTwoVendors(dir), Size = 16 };
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => DataSets.Load("emoji+emoji-twitter", options)).Message);
        Assert.Contains("built-in data sets with '+'", Assert.Throws<ArgumentException>(() => DataSets.Load("emoji-twitter+./nowhere", options)).Message);
        Assert.Contains("--vendor", Assert.Throws<ArgumentException>(() => DataSets.Load("emoji-twitter+emoji-google", options with { Vendor = EmojiVendor.Google })).Message);
        // A part that is not cached says which fetch to run.
        var missing = Assert.Throws<FileNotFoundException>(() => DataSets.Load("emoji-twitter+mnist", options));
        Assert.Contains("snce data fetch mnist", missing.Message);
    }
}
