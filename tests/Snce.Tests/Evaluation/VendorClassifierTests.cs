using System.Text.Json;
using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Editing;
using Snce.Evaluation;
using Snce.Tests.Data;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

/// <summary>
/// The vendor classifier behind the vendor success rate of translations: trained through the real emoji loader on two fixture
/// "vendors" that differ visibly (twitter draws dark colors, google bright ones), its checkpoint, the rate and its mismatch errors.
/// </summary>
public class VendorClassifierTests
{
    internal const int EmojiCount = 40;
    static readonly ClassifierTrainOptions Tiny = new() { Steps = 40, BatchSize = 32, Width = 8, LearningRate = 3e-3, Seed = 1, Label = ClassifierLabel.Vendor };

    static string Unified(int k) => $"1F{0x600 + k:X3}";

    /// <summary>Fetches fixture emoji-twitter and emoji-google (the same code points; twitter's colors in 20..100, google's in 150..230) into DIR/data.</summary>
    internal static string FetchTwoVendors(TempDir dir)
    {
        foreach (var (vendor, name, low) in new[] { (EmojiVendor.Twitter, "twitter", 20), (EmojiVendor.Google, "google", 150) })
        {
            var emoji = Enumerable.Range(0, EmojiCount).Select(k => new NpmFixtures.Emoji(Unified(k), k % 2 == 0 ? "Smileys & Emotion" : "People & Body", "sub",
                [(byte)(low + k * 2 % 80), (byte)(low + k * 7 % 80), (byte)(low + k * 13 % 80), 255])).ToList();
            var source = new NpmFixtures.Source(new Dictionary<string, string>
            {
                [$"emoji-datasource-{name}"] = NpmFixtures.Tarball(dir[$"{name}.tgz"], NpmFixtures.EmojiFiles(name, emoji)),
                ["emojibase-data"] = NpmFixtures.Tarball(dir[$"{name}-base.tgz"], NpmFixtures.EmojibaseFiles()),
            });
            DataFetcher.Fetch(BuiltInDataSets.Emoji(vendor) with { ExpectedCount = EmojiCount }, dir["data"], source);
        }
        return dir["data"];
    }

    [Fact]
    public void TellsTwoVendorsApartOnEmojiItNeverSawAndSurvivesACheckpoint()
    {
        using var dir = new TempDir();
        var options = new DataOptions { DataDir = FetchTwoVendors(dir), Size = 16 };
        using var data = EmojiVendorSet.Load([EmojiVendor.Twitter, EmojiVendor.Google], options);
        Assert.Equal(["twitter", "google"], data.Classes);
        Assert.Equal("emoji (twitter, google)", data.Name);
        Assert.Equal(2 * EmojiCount, data.Count);
        Assert.Equal(16, data.Size);
        var labels = data.Labels.data<long>().ToArray();
        var split = data.Split.data<byte>().ToArray();
        var unified = data.Attributes["unified"];
        Assert.Equal(Enumerable.Repeat(0L, EmojiCount).Concat(Enumerable.Repeat(1L, EmojiCount)), labels);
        // Held out by code point: an emoji is held out for both vendors or for neither, so no held-out emoji was seen in training in any style.
        var heldOut = Enumerable.Range(0, data.Count).Where(i => split[i] == ImageDataset.ValidationSplit).Select(i => unified[i]).ToHashSet();
        var trained = Enumerable.Range(0, data.Count).Where(i => split[i] == ImageDataset.TrainSplit).Select(i => unified[i]).ToHashSet();
        Assert.NotEmpty(heldOut);
        Assert.Empty(heldOut.Intersect(trained));
        Assert.Equal(2 * heldOut.Count, split.Count(s => s == ImageDataset.ValidationSplit));

        var result = ClassifierTraining.Train(data, Tiny, CPU);
        using var model = result.Model;
        Assert.Equal(ClassifierLabel.Vendor, result.Info.Label);
        Assert.Equal(2 * heldOut.Count, result.Info.HeldOutCount);
        Assert.True(result.Info.HeldOutAccuracy >= 0.95, $"held-out accuracy {result.Info.HeldOutAccuracy:P1} (chance 50%)");

        // The success rate for "google" on held-out images: the google ones are all assigned to it, the twitter ones none.
        using var googleRows = tensor(Enumerable.Range(0, data.Count).Where(i => split[i] == 1 && labels[i] == 1).Select(i => (long)i).ToArray());
        using var twitterRows = tensor(Enumerable.Range(0, data.Count).Where(i => split[i] == 1 && labels[i] == 0).Select(i => (long)i).ToArray());
        using var google = data.Images.index_select(0, googleRows);
        using var twitter = data.Images.index_select(0, twitterRows);
        Assert.Equal(1.0, VendorSuccess.Rate(model, google, 1));
        Assert.Equal(0.0, VendorSuccess.Rate(model, twitter, 1));

        ClassifierCheckpoint.Save(dir["clf"], model, result.Info);
        Assert.Contains("\"label\": \"vendor\"", File.ReadAllText(dir["clf/classifier.json"]));
        var loaded = ClassifierCheckpoint.Load(dir["clf"]);
        using var loadedModel = loaded.Model;
        Assert.Equal(ClassifierLabel.Vendor, loaded.Info.Label);
        Assert.Equal(["twitter", "google"], loaded.Info.Classes);
        Assert.Equal(1.0, VendorSuccess.Rate(loadedModel, google, 1));
    }

    [Fact]
    public void TheRateIsTheShareAssignedToTheTargetVendor()
    {
        // Hand-computed: 3 of 5 predictions are vendor 1, 2 are vendor 0, none is vendor 2.
        using var predicted = tensor(new long[] { 0, 1, 1, 0, 1 });
        Assert.Equal(0.6, VendorSuccess.Rate(predicted, 1), 12);
        Assert.Equal(0.4, VendorSuccess.Rate(predicted, 0), 12);
        Assert.Equal(0.0, VendorSuccess.Rate(predicted, 2));
        using var none = empty(0, dtype: ScalarType.Int64);
        Assert.Throws<ArgumentException>(() => VendorSuccess.Rate(none, 0));
        // The pairs' target vendor, from the reference their shards record.
        Assert.Equal(EmojiVendor.Google, PairedData.TargetVendor("emoji-twitter:emoji-google"));
        Assert.Equal(EmojiVendor.Twitter, PairedData.TargetVendor("emoji-google:emoji-twitter"));
        Assert.Equal(EmojiVendor.Google, PairedData.TargetVendor("emoji-google:skin-tone=dark"));
        Assert.Null(PairedData.TargetVendor("mnist:fashion-mnist"));
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["pairs"]);
        Assert.Null(PairedData.TargetVendor(dir["pairs"]));
    }

    [Fact]
    public void AClassifierThatCannotJudgeThePairsIsRefusedByName()
    {
        var config = new ClassifierConfig(3, 16, 2, Width: 4);
        using var model = new ImageClassifier(config);
        TrainedClassifier With(string[] classes, ClassifierLabel label, ClassifierConfig? c = null) =>
            new(model, new ClassifierInfo("emoji (twitter, google)", classes, 1.0, 4, 40, 10, c ?? config, label));
        var vendors = With(["twitter", "google"], ClassifierLabel.Vendor);
        Assert.Equal(1, VendorSuccess.TargetLabel(vendors, EmojiVendor.Google, 3, 16));
        Assert.Equal(0, VendorSuccess.TargetLabel(vendors, EmojiVendor.Twitter, 3, 16));
        string Error(TrainedClassifier c, EmojiVendor v, int channels, int size) =>
            Assert.Throws<ArgumentException>(() => VendorSuccess.TargetLabel(c, v, channels, size)).Message;
        Assert.Contains("not a vendor classifier", Error(With(["Smileys & Emotion", "People & Body"], ClassifierLabel.Class), EmojiVendor.Google, 3, 16));
        var unknown = Error(With(["twitter", "apple"], ClassifierLabel.Vendor), EmojiVendor.Google, 3, 16);
        Assert.Contains("[twitter, apple], not the pairs' target vendor google", unknown);
        Assert.Contains("--vendors twitter,apple,google", unknown);
        Assert.Contains("3-channel 16-px images, the translations are 3-channel 32-px", Error(vendors, EmojiVendor.Google, 3, 32));
        Assert.Contains("3-channel 16-px images, the translations are 1-channel 16-px", Error(vendors, EmojiVendor.Google, 1, 16));
        Assert.Contains("at least 2 vendors", Assert.Throws<ArgumentException>(() => EmojiVendorSet.Parse("google")).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => EmojiVendorSet.Parse("google,Google")).Message);
        Assert.Contains("unknown emoji vendor 'samsung'", Assert.Throws<ArgumentException>(() => EmojiVendorSet.Parse("google,samsung")).Message);
    }

    [Fact]
    public void ACheckpointWrittenBeforeLabelsExistedLoadsAsAClassClassifier()
    {
        // The on-disk format of a class classifier saved before "label" was recorded: the same metadata keys, no label field.
        using var dir = new TempDir();
        var config = new ClassifierConfig(1, 8, 3, Width: 2);
        using var model = new ImageClassifier(config);
        const string old = """
            {"data_set": "mnist", "classes": ["a", "b", "c"], "held_out_accuracy": 0.5, "held_out_count": 2, "train_count": 4, "steps": 1,
             "config": {"channels": 1, "image_size": 8, "classes": 3, "width": 2}}
            """;
        Directory.CreateDirectory(dir["old"]);
        Snce.IO.Safetensors.Save(dir["old/model.safetensors"], model.state_dict(), new Dictionary<string, string> { ["format"] = "snce-classifier-1", ["classifier"] = old });
        var loaded = ClassifierCheckpoint.Load(dir["old"]);
        using var loadedModel = loaded.Model;
        Assert.Equal(ClassifierLabel.Class, loaded.Info.Label);
        Assert.Equal(config, loaded.Info.Config);
        Assert.Contains("not a vendor classifier", Assert.Throws<ArgumentException>(() => VendorSuccess.TargetLabel(loaded, EmojiVendor.Google, 1, 8)).Message);
    }

    [Fact]
    public void TrainAndEvalFromTheCommandLineReportTheRateNextToTheBaselines()
    {
        using var dir = new TempDir();
        var data = FetchTwoVendors(dir);
        // The vendor classifier at the fixture tokenizer's shape (16 px, gray).
        var c = CliRunner.Run("classifier", "train", "--data", "emoji", "--label", "vendor", "--data-dir", data, "--size", "16", "--channels", "1",
            "--steps", "40", "--batch", "32", "--width", "8", "--lr", "3e-3", "--seed", "1", "--device", "cpu", "--json", "--out", dir["vclf"]);
        Assert.True(c.ExitCode == 0, c.Stderr);
        using (var doc = JsonDocument.Parse(c.Stdout))
        {
            Assert.Equal("vendor", doc.RootElement.GetProperty("label").GetString());
            Assert.Equal(["twitter", "google"], doc.RootElement.GetProperty("classes").EnumerateArray().Select(e => e.GetString()));
            Assert.True(doc.RootElement.GetProperty("held_out_accuracy").GetDouble() >= 0.95, c.Stdout);
        }
        // A tiny twitter → google run.
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused-tokens"]);
        var t = CliRunner.Run("tokenize", "--tokenizer", dir["tokenizer"], "--pairs", "emoji-twitter:emoji-google", "--data-dir", data, "--latents", "full",
            "--neighbors-k", "4", "--device", "cpu", "--out", dir["paired"]);
        Assert.True(t.ExitCode == 0, t.Stderr);
        var r = CliRunner.Run("train", "mask", "--tokens", dir["paired"], "--preset", "tiny", "--loss", "ce", "--batch", "8", "--lr", "3e-3", "--steps", "4",
            "--log-every", "2", "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", dir["run"]);
        Assert.True(r.ExitCode == 0, r.Stderr);

        var e = CliRunner.Run("eval", "--checkpoint", dir["run"], "--vendor-classifier", dir["vclf"], "--data-dir", data, "--sampling-steps", "2", "--device", "cpu", "--json");
        Assert.True(e.ExitCode == 0, e.Stderr);
        using (var doc = JsonDocument.Parse(e.Stdout))
        {
            var v = doc.RootElement.GetProperty("vendor_success");
            Assert.Equal("google", v.GetProperty("target_vendor").GetString());
            // The classifier separates the fixture vendors on held-out emoji: the copied (twitter) sources are never google, the
            // ground-truth and nearest training targets (google drawings) always are.
            Assert.Equal(0.0, v.GetProperty("copy_source").GetDouble());
            Assert.Equal(1.0, v.GetProperty("ground_truth_target").GetDouble());
            Assert.Equal(1.0, v.GetProperty("nearest_training_target").GetDouble());
            Assert.InRange(v.GetProperty("generated").GetDouble(), 0, 1);
            Assert.Equal(["twitter", "google"], v.GetProperty("classifier_vendors").EnumerateArray().Select(x => x.GetString()));
        }
        var text = CliRunner.Run("eval", "--checkpoint", dir["run"], "--vendor-classifier", dir["vclf"], "--data-dir", data, "--sampling-steps", "2", "--device", "cpu");
        Assert.True(text.ExitCode == 0, text.Stderr);
        Assert.Contains("vendor success rate", text.Stdout);
        Assert.Contains("ground-truth target", text.Stdout);

        void Fails(string[] args, params string[] expected)
        {
            var f = CliRunner.Run(args);
            Assert.True(f.ExitCode != 0, $"snce {string.Join(' ', args)} should fail");
            Assert.StartsWith("snce: error:", f.Stderr);
            foreach (var x in expected) Assert.Contains(x, f.Stderr);
            Assert.DoesNotContain("   at ", f.Stderr);
        }
        string[] train = ["classifier", "train", "--data-dir", data, "--size", "16", "--channels", "1", "--steps", "2", "--batch", "8", "--width", "4", "--device", "cpu"];
        // A class classifier, and a vendor classifier at another size: each refused before anything is translated.
        Assert.Equal(0, CliRunner.Run([.. train, "--data", "emoji", "--out", dir["class"]]).ExitCode);
        Assert.Equal(0, CliRunner.Run([.. train.Select(a => a == "16" ? "32" : a), "--data", "emoji", "--label", "vendor", "--out", dir["big"]]).ExitCode);
        string[] eval = ["eval", "--checkpoint", dir["run"], "--data-dir", data, "--device", "cpu", "--vendor-classifier"];
        Fails([.. eval, dir["class"]], "not a vendor classifier", "--label vendor");
        Fails([.. eval, dir["big"]], "32-px images, the translations are 1-channel 16-px");
        Fails(["eval", "--images", dir["x.npy"], "--data", "emoji", "--data-dir", data, "--vendor-classifier", dir["vclf"], "--device", "cpu"], "--vendor-classifier belongs to --checkpoint of a paired");
        Fails(["eval", "--images", dir["x.npy"], "--data", "emoji", "--data-dir", data, "--classifier", dir["vclf"], "--device", "cpu"], "is a vendor classifier", "--vendor-classifier");
        Fails([.. train, "--data", "emoji-google", "--label", "vendor", "--out", dir["bad"]], "give --data emoji");
        Fails([.. train, "--data", "emoji", "--label", "vendor", "--vendor", "google", "--out", dir["bad"]], "use --vendors");
        Fails([.. train, "--data", "emoji", "--vendors", "twitter,google", "--out", dir["bad"]], "--vendors belongs to --label vendor");
    }
}
