using System.Text.Json;
using Snce.Data;
using Snce.Tests.Support;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

/// <summary>The paired verbs end to end on a tiny folder: tokenize --pairs, train, edit, eval, and their errors.</summary>
public class PairedCliTests
{
    const int Pairs = 24, Size = 16;

    static byte[] Source(int i, int x, int y) => [(byte)((x * 16 + y * i * 3) % 256)];

    static void Png(string path, int channels, Func<int, int, byte> f, int side = Size)
    {
        var px = new byte[side * side * channels];
        for (var y = 0; y < side; y++) for (var x = 0; x < side; x++) for (var c = 0; c < channels; c++) px[(y * side + x) * channels + c] = f(x, y);
        using var fs = File.Create(path);
        new ImageWriter().WritePng(px, side, side, channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue, fs);
    }

    /// <summary>A paired folder (target = the source mirrored left to right), an untrained tokenizer, paired shards and a tiny masked run.</summary>
    static void Prepare(TempDir dir, string kind = "mask")
    {
        Directory.CreateDirectory(dir["pairs/src"]);
        Directory.CreateDirectory(dir["pairs/dst"]);
        for (var i = 0; i < Pairs; i++)
        {
            Png(dir[$"pairs/src/p{i:D2}.png"], 1, (x, y) => Source(i, x, y)[0]);
            Png(dir[$"pairs/dst/p{i:D2}.png"], 1, (x, y) => Source(i, Size - 1 - x, y)[0]);
        }
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused-tokens"]);
        var t = CliRunner.Run("tokenize", "--tokenizer", dir["tokenizer"], "--pairs", dir["pairs"], "--latents", "full", "--neighbors-k", "4", "--device", "cpu", "--json", "--out", dir["paired"]);
        Assert.True(t.ExitCode == 0, t.Stderr);
        using var doc = JsonDocument.Parse(t.Stdout);
        Assert.Equal(Pairs, doc.RootElement.GetProperty("pair_count").GetInt32());
        Assert.True(doc.RootElement.GetProperty("held_out").GetInt32() >= 1);
        var r = CliRunner.Run("train", kind, "--tokens", dir["paired"], "--preset", "tiny", "--loss", "snce", "--tau", "0.5", "--batch", "8", "--lr", "3e-3", "--steps", "6",
            "--log-every", "3", "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", dir["run"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("source", File.ReadAllText(Path.Combine(dir["run"], "checkpoint", "checkpoint.json")));
    }

    [Fact]
    public void EditTranslatesTheSourceAndWritesItsRow()
    {
        using var dir = new TempDir();
        Prepare(dir);
        var r = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["pairs/src/p03.png"], "--n", "3", "--seed", "2", "--steps", "3", "--device", "cpu", "--json", "--out", dir["out.png"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("source", doc.RootElement.GetProperty("conditioning").GetString());
        Assert.Equal(3, doc.RootElement.GetProperty("results").GetArrayLength());
        // The PNG: source + 3 results, 16-px cells with 2-px gutters, one row.
        var png = ImageFiles.Read(dir["out.png"]);
        Assert.Equal((2 + 4 * 18, 2 + 18), (png.Width, png.Height));
        // Row 0 of the token file is the source's tokens: those the paired shards hold for p03.
        using var ids = Snce.IO.Npy.Load(dir["out.tokens.npy"]).to_type(ScalarType.Int64).view(4, 16);
        using var shards = TokenShards.Load(dir["paired"]);
        var row = Array.IndexOf(shards.PairNames!, "p03.png");
        Assert.True(ids[0].Equals(shards.SourceTokens![row].to_type(ScalarType.Int64)));
        // Same seed, same results.
        var again = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["pairs/src/p03.png"], "--n", "3", "--seed", "2", "--steps", "3", "--device", "cpu", "--out", dir["again.png"]);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Equal(File.ReadAllBytes(dir["out.tokens.npy"]), File.ReadAllBytes(dir["again.tokens.npy"]));
    }

    [Fact]
    public void EditAndTokenizeRefuseWhatAPairedRunCannotTake()
    {
        using var dir = new TempDir();
        Prepare(dir);
        Png(dir["rgb.png"], 3, (_, _) => 9);
        Png(dir["big.png"], 1, (_, _) => 9, side: 32);
        void Fails(string[] args, params string[] expected)
        {
            var r = CliRunner.Run(args);
            Assert.True(r.ExitCode != 0, $"snce {string.Join(' ', args)} should fail");
            Assert.StartsWith("snce: error:", r.Stderr);
            foreach (var e in expected) Assert.Contains(e, r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
        }
        string[] edit = ["edit", "--checkpoint", dir["run"], "--device", "cpu", "--out", dir["x.png"]];
        Fails(edit, "--image");                                                                       // no source image
        Fails([.. edit, "--image", dir["rgb.png"]], "3 channels (RGB) but the tokenizer takes 1 channel (gray)", "--fit");
        Fails([.. edit, "--image", dir["big.png"]], "32x32 pixels but the tokenizer takes 16x16", "--fit");
        Fails([.. edit, "--image", dir["pairs/src/p00.png"], "--box", "0,0,4,4"], "paired", "leave out --mask, --box and --outpaint");
        Fails([.. edit, "--image", dir["pairs/src/p00.png"], "--class", "1"], "leave out --class");
        string[] tokenize = ["tokenize", "--tokenizer", dir["tokenizer"], "--neighbors-k", "4", "--device", "cpu", "--out", dir["t2"]];
        Fails([.. tokenize, "--pairs", "emoji-twitter:emoji-twitter"], "with itself");
        Fails([.. tokenize, "--pairs", "nowhere:else"], "neither an existing folder nor two data sets");
        Fails([.. tokenize, "--pairs", dir["pairs"], "--data", "mnist"], "not both");
        Fails(tokenize, "--data NAME|DIR, or --pairs");
        File.Delete(dir["pairs/dst/p05.png"]);
        Fails([.. tokenize, "--pairs", dir["pairs"]], "no partner", "src/p05.png");
        Fails(["eval", "--checkpoint", dir["run"], "--inpaint", "center", "--device", "cpu"], "paired", "--inpaint does not apply");
        Fails(["sample", "--checkpoint", dir["run"], "--device", "cpu", "--out", dir["s.png"]], "paired (image-to-image) run", "snce edit --checkpoint");
    }

    [Fact]
    public void EvalScoresTheHeldOutPairsNextToTheBaselines()
    {
        using var dir = new TempDir();
        Prepare(dir, kind: "ar");
        var r = CliRunner.Run("eval", "--checkpoint", dir["run"], "--json", "--grid", dir["grid.png"], "--device", "cpu");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var t = doc.RootElement.GetProperty("translation");
        using var shards = TokenShards.Load(dir["paired"]);
        var split = shards.Split.data<byte>().ToArray();
        var held = Enumerable.Range(0, Pairs).Where(i => split[i] == 1).ToArray();
        Assert.Equal(held.Length, doc.RootElement.GetProperty("held_out_pairs").GetInt32());
        // "Copy the source" against the PNGs, computed here: PSNR and L1 per held-out pair, then the mean.
        double psnr = 0, l1 = 0;
        foreach (var i in held)
        {
            var name = shards.PairNames![i];
            var (a, b) = (ImageFiles.Read(dir[$"pairs/src/{name}"]).Pixels, ImageFiles.Read(dir[$"pairs/dst/{name}"]).Pixels);
            var mse = a.Zip(b, (p, q) => Math.Pow((p - q) / 255.0, 2)).Average();
            psnr += -10 * Math.Log10(Math.Max(mse, Snce.Evaluation.ReconstructionQuality.MseFloor));
            l1 += a.Zip(b, (p, q) => Math.Abs(p - q) / 255.0).Average();
        }
        Assert.Equal(psnr / held.Length, t.GetProperty("copy_source").GetProperty("psnr").GetDouble(), 2);
        Assert.Equal(l1 / held.Length, t.GetProperty("copy_source").GetProperty("l1").GetDouble(), 1e-4);
        // Copying the source's tokens: the share of positions where they equal the target's.
        var copyAcc = held.Average(i => (shards.SourceTokens![i] == shards.Tokens[i]).to_type(ScalarType.Float64).mean().item<double>());
        Assert.Equal(copyAcc, t.GetProperty("copy_source").GetProperty("token_accuracy").GetDouble(), 1e-3);
        Assert.Equal(1.0, t.GetProperty("reconstruction").GetProperty("token_accuracy").GetDouble());
        foreach (var row in new[] { "generated", "nearest_training_target" })
            Assert.InRange(t.GetProperty(row).GetProperty("ssim").GetDouble(), -1, 1);
        var grid = ImageFiles.Read(dir["grid.png"]);
        Assert.Equal(2 + 3 * 18, grid.Height);                                                      // sources, targets, translations
    }
}
