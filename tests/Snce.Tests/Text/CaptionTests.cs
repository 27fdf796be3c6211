using Snce.Data;
using Snce.Tests.Support;
using Snce.Text;

namespace Snce.Tests.Text;

/// <summary>Emoji caption templates and the captions.jsonl reader's errors.</summary>
public sealed class CaptionTests
{
    [Fact]
    public void Emoji_captions_use_name_keywords_and_subcategory_and_hold_out_other_phrasings()
    {
        var (train, heldOut) = EmojiCaptions.Of("red apple", "apple, fruit, food, red", "food-fruit");
        Assert.Equal(EmojiCaptions.TrainPhrasings, train.Length);
        Assert.Equal(EmojiCaptions.HeldOutPhrasings, heldOut.Length);
        Assert.Equal(["red apple", "an emoji of a red apple", "a red apple, fruit, food", "red apple emoji, food fruit"], train);
        Assert.Equal(["a picture of a red apple", "red apple icon, fruit, food"], heldOut);
        Assert.Empty(train.Intersect(heldOut));
        Assert.Equal("an emoji of an orange", EmojiCaptions.Of("orange", "", "").Train[1]);
        Assert.Equal("orange emoji", EmojiCaptions.Of("orange", "", "").Train[3]);
    }

    static string Folder(TempDir dir, params string[] lines)
    {
        var root = dir["captioned"];
        Directory.CreateDirectory(root);
        using (var img = TorchSharp.torch.zeros([1, 3, 4, 4], dtype: TorchSharp.torch.ScalarType.Byte)) ImageGrid.SavePng(Path.Combine(root, "a.png"), img, 1);
        File.WriteAllLines(Path.Combine(root, CaptionFile.FileName), lines);
        return root;
    }

    [Fact]
    public void A_malformed_line_names_its_line_number()
    {
        using var dir = new TempDir();
        var root = Folder(dir, """{"file": "a.png", "caption": "a black square"}""", "", """{"file": "a.png", "caption": """);
        var e = Assert.Throws<InvalidDataException>(() => CaptionFile.Read(root));
        Assert.Contains("line 3", e.Message);
        Assert.Contains("not a JSON object", e.Message);
    }

    [Fact]
    public void A_missing_file_or_empty_caption_names_the_line()
    {
        using var dir = new TempDir();
        var missing = Assert.Throws<FileNotFoundException>(() => CaptionFile.Read(Folder(dir, """{"file": "a.png", "caption": "x"}""", """{"file": "b.png", "caption": "y"}""")));
        Assert.Contains("line 2", missing.Message);
        Assert.Contains("'b.png' does not exist", missing.Message);
        using var dir2 = new TempDir();
        var empty = Assert.Throws<InvalidDataException>(() => CaptionFile.Read(Folder(dir2, """{"file": "a.png", "caption": "  "}""")));
        Assert.Contains("line 1", empty.Message);
        Assert.Contains("missing or empty", empty.Message);
        using var dir3 = new TempDir();
        var noFile = Assert.Throws<InvalidDataException>(() => CaptionFile.Read(Folder(dir3, """{"caption": "z"}""")));
        Assert.Contains("no \"file\"", noFile.Message);
    }

    [Fact]
    public void A_captioned_folder_loads_with_its_captions_and_the_cli_reports_a_bad_line_as_an_error()
    {
        using var dir = new TempDir();
        var root = Folder(dir, """{"file": "a.png", "caption": "a black square"}""", """{"file": "./a.png", "caption": "one black square"}""");
        using (var data = DataSets.Load(root, new DataOptions()))
        {
            Assert.Equal(1, data.Count);
            var set = CaptionSet.From(data);
            Assert.Equal(["a black square", "one black square"], set.Train[0]);
            Assert.Empty(set.HeldOut[0]);
        }
        File.AppendAllLines(Path.Combine(root, CaptionFile.FileName), ["not json"]);
        var r = CliRunner.Run("data", "info", root);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("snce: error:", r.Stderr);
        Assert.Contains("line 3", r.Stderr);
    }
}
