using System.Text.Json.Nodes;
using Snce.Data;
using Snce.Tests.Support;
using Snce.Text;
using static TorchSharp.torch;

namespace Snce.Tests.Data;

/// <summary>
/// The loading prologue token shards and caption shards share (<see cref="ShardFolder"/>): each case runs for both,
/// so the one code path is checked as each caller uses it — the messages name the file, and the command that
/// rewrites the folder; a load that fails after reading arrays leaves no tensor alive.
/// </summary>
public sealed class ShardFolderTests
{
    /// <summary>A valid folder of one kind, its description file, and how its errors name it.</summary>
    /// <remarks><c>BreakChecks</c> damages the folder so that it fails only in the checks run after every array is read.</remarks>
    sealed record Kind(string InfoPath, string Description, string CurrentFormat, string Rerun, string LastArray, Action Load, Action BreakChecks, string BrokenCheck);

    const int CaptionedImages = 2;

    static Kind Make(string kind, TempDir dir)
    {
        var folder = dir["shards"];
        if (kind == "tokens")
        {
            using (var shards = GeneratorFixtures.Shards()) shards.Save(folder);
            return new(Path.Combine(folder, TokenShards.InfoFile), "shard description", TokenShardsInfo.CurrentFormat, "snce tokenize",
                "codebook.npy", () => TokenShards.Load(folder).Dispose(),
                () =>
                {
                    using var split = Snce.IO.Npy.Load(Path.Combine(folder, "split.npy"));
                    split[0] = 2;
                    Snce.IO.Npy.Save(Path.Combine(folder, "split.npy"), split);
                }, "split.npy holds values other than 0 (train) and 1 (validation)");
        }
        using (var captions = new CaptionShards
        {
            Info = new CaptionShardsInfo
            {
                Encoder = "all-minilm-l6-v2-test", EncoderDim = 6, MaxTokens = 32, Source = "captions.jsonl",
                Captions = ["a red square", "a blue circle", "one red square"], Train = [[0], [1]], HeldOut = [[2], []],
            },
            Tokens = randn(3, 4, 6).to(ScalarType.Float16), Lengths = tensor(new long[] { 4, 2, 3 }), Pooled = randn(3, 6),
        })
            captions.Save(folder);
        return new(Path.Combine(folder, CaptionShards.InfoFile), "caption description", CaptionShardsInfo.CurrentFormat, "snce tokenize --text",
            "text_pooled.npy", () => CaptionShards.Load(folder, CaptionedImages).Dispose(),
            () =>
            {
                var path = Path.Combine(folder, CaptionShards.InfoFile);
                var info = JsonNode.Parse(File.ReadAllText(path))!;
                info["train"]!.AsArray().Add(new JsonArray(0));
                info["held_out"]!.AsArray().Add(new JsonArray());
                File.WriteAllText(path, info.ToJsonString());
            }, $"lists captions for {CaptionedImages + 1} (held out: {CaptionedImages + 1}) images, the shards hold {CaptionedImages}");
    }

    public static TheoryData<string> Kinds => new() { "tokens", "captions" };

    [Theory, MemberData(nameof(Kinds))]
    public void AValidFolderLoadsAndDisposesEverything(string kind)
    {
        using var dir = new TempDir();
        var k = Make(kind, dir);
        LeakCheck.AssertNoLeak(k.Load, repeats: 3, what: $"{kind} load");
    }

    [Theory, MemberData(nameof(Kinds))]
    public void AMissingDescriptionIsFileNotFoundNamingTheFileAndTheCommand(string kind)
    {
        using var dir = new TempDir();
        var k = Make(kind, dir);
        File.Delete(k.InfoPath);
        var e = Assert.Throws<FileNotFoundException>(k.Load);
        Assert.Equal(k.InfoPath, e.FileName);
        Assert.Contains($"'{k.Rerun}'", e.Message);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void ADamagedDescriptionNamesTheFileWhatIsWrongAndTheCommand(string kind)
    {
        using var dir = new TempDir();
        var k = Make(kind, dir);
        var good = File.ReadAllText(k.InfoPath);
        string Refused(string text)
        {
            File.WriteAllText(k.InfoPath, text);
            return Assert.Throws<InvalidDataException>(k.Load).Message;
        }

        var cut = Refused(good[..(good.Length / 2)]);
        Assert.StartsWith($"{k.InfoPath}: not a valid {k.Description} (", cut);
        Assert.EndsWith($"; the file is damaged or cut short, re-run '{k.Rerun}'", cut);
        Assert.DoesNotContain("Path:", cut);                                // System.Text.Json's position suffix is cut off

        Assert.Equal($"{k.InfoPath} is empty (null); re-run '{k.Rerun}'", Refused("null"));

        var other = JsonNode.Parse(good)!;
        other["format"] = "snce-other/9";
        Assert.Equal($"{k.InfoPath}: format 'snce-other/9' is not '{k.CurrentFormat}'; re-run '{k.Rerun}'", Refused(other.ToJsonString()));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void ALoadFailingAfterSomeArraysWereReadLeavesNoTensorAlive(string kind)
    {
        using var dir = new TempDir();
        var k = Make(kind, dir);
        // The last required array cut short: the ones read before it must be disposed by the failed load.
        var last = Path.Combine(Path.GetDirectoryName(k.InfoPath)!, k.LastArray);
        var bytes = File.ReadAllBytes(last);
        File.WriteAllBytes(last, bytes[..^8]);
        var growth = LeakCheck.LiveTensorGrowth(() => Assert.Contains(last, Assert.Throws<InvalidDataException>(k.Load).Message), repeats: 3);
        Assert.Equal(0, growth);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void ALoadFailingInTheChecksLeavesNoTensorAlive(string kind)
    {
        using var dir = new TempDir();
        var k = Make(kind, dir);
        k.BreakChecks();
        var growth = LeakCheck.LiveTensorGrowth(() => Assert.Contains(k.BrokenCheck, Assert.Throws<InvalidDataException>(k.Load).Message), repeats: 3);
        Assert.Equal(0, growth);
    }

    [Fact]
    public void AnArrayOfTheWrongDtypeNamesTheFileAndTheCommand()
    {
        // Only token shards ask the shared loader for a dtype (caption shards check dtype and shape together).
        using var dir = new TempDir();
        Make("tokens", dir);
        var labels = Path.Combine(dir["shards"], "labels.npy");
        using (var t = Snce.IO.Npy.Load(labels))
        using (var wrong = t.to(ScalarType.Int32))
            Snce.IO.Npy.Save(labels, wrong);
        var e = Assert.Throws<InvalidDataException>(() => TokenShards.Load(dir["shards"]));
        Assert.Equal($"{labels} holds Int32, expected Int64; re-run 'snce tokenize'", e.Message);
    }
}
