using System.Text.Json;
using Snce.IO;
using Snce.Tests.Support;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

public class EditCliTests
{
    /// <summary>A PNG of <paramref name="w"/>×<paramref name="h"/> pixels: gray (1 channel) or RGB, value f(x, y).</summary>
    static void Png(string path, int w, int h, int channels, Func<int, int, byte> f)
    {
        var px = new byte[w * h * channels];
        for (var y = 0; y < h; y++) for (var x = 0; x < w; x++) for (var c = 0; c < channels; c++) px[(y * w + x) * channels + c] = f(x, y);
        using var fs = File.Create(path);
        new ImageWriter().WritePng(px, w, h, channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue, fs);
    }

    /// <summary>An untrained 16-px gray tokenizer (4×4 tokens of 4 px, K 16), its shards, and a <paramref name="kind"/> generator trained a few steps.</summary>
    static void TrainTiny(TempDir dir, string kind)
    {
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["tokens"]);
        var r = CliRunner.Run("train", kind, "--tokens", dir["tokens"], "--preset", "tiny", "--batch", "16", "--lr", "3e-3", "--steps", "10",
            "--log-every", "5", "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", dir["run"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Png(dir["in.png"], 16, 16, 1, (x, y) => (byte)(x * 16));
    }

    [Theory]
    [InlineData("mask")]
    [InlineData("ar")]
    public void EditWritesThePanelAndKeepsEveryTokenOutsideTheRegion(string kind)
    {
        using var dir = new TempDir();
        TrainTiny(dir, kind);
        var r = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["in.png"], "--box", "8,0,8,8", "--class", "1,2", "--n", "3",
            "--seed", "4", "--steps", "3", "--device", "cpu", "--json", "--out", dir["out.png"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        // The box covers columns 8..15, rows 0..7 of 16 px: token columns 2..3, rows 0..1 of the 4×4 grid.
        Assert.Equal(4, root.GetProperty("tokens_regenerated").GetInt32());
        Assert.Equal(12, root.GetProperty("tokens_kept").GetInt32());
        Assert.Equal(0, root.GetProperty("tokens_changed_outside").GetInt64());
        Assert.Equal("[[0,2],[0,3],[1,2],[1,3]]", root.GetProperty("regenerated").GetRawText().Replace(" ", "").Replace("\n", "").Replace("\r", ""));
        Assert.Equal(3, root.GetProperty("results").GetArrayLength());
        Assert.Equal(2, root.GetProperty("results")[1].GetProperty("class").GetInt64());

        // The PNG: 5 cells of 16 px in one row with 2-px gutters, RGB (the overlay is tinted).
        var info = Snce.Data.ImageFiles.Read(dir["out.png"]);
        Assert.Equal((2 + 5 * 18, 2 + 18, 3), (info.Width, info.Height, info.Channels));
        // The token file: row 0 the source, rows 1..3 the results, equal outside the region.
        using var ids = Npy.Load(dir["out.tokens.npy"]).to_type(ScalarType.Int64).view(4, 16);
        var outside = tensor(Enumerable.Range(0, 16).Select(i => !(i / 4 < 2 && i % 4 >= 2)).ToArray());
        for (var i = 1; i < 4; i++) Assert.True(ids[i].masked_select(outside).Equals(ids[0].masked_select(outside)));
        Assert.Contains("region: 4 of 16 tokens regenerated", File.ReadAllText(dir["out.captions.json"]));
    }

    [Fact]
    public void MasksAndOutpaintingWorkAndFitResizesAnyImage()
    {
        using var dir = new TempDir();
        TrainTiny(dir, "mask");
        Png(dir["m.png"], 16, 16, 1, (x, y) => (byte)(x < 3 && y >= 12 ? 255 : 0));   // bottom-left corner: token (3, 0) only
        var m = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["in.png"], "--mask", dir["m.png"], "--n", "1", "--device", "cpu", "--json", "--out", dir["m-out.png"]);
        Assert.True(m.ExitCode == 0, m.Stderr);
        Assert.Contains("\"tokens_regenerated\": 1,", m.Stdout);
        var o = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["in.png"], "--outpaint", "bottom", "--outpaint-fraction", "0.25", "--n", "2", "--device", "cpu", "--out", dir["o.png"]);
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("4 of 16 tokens regenerated, 12 kept exactly", o.Stdout);
        // A 40×32 RGB image and its mask, fitted: center crop 32×32, resized to 16×16 gray.
        Png(dir["big.png"], 40, 32, 3, (x, y) => (byte)(y * 8));
        Png(dir["big-mask.png"], 40, 32, 1, (x, y) => (byte)(x >= 20 ? 255 : 0));
        var f = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["big.png"], "--mask", dir["big-mask.png"], "--fit", "--n", "1", "--device", "cpu", "--json", "--out", dir["f.png"]);
        Assert.True(f.ExitCode == 0, f.Stderr);
        Assert.Contains("\"tokens_regenerated\": 8,", f.Stdout);                           // crop columns 4..35, right half from column 20 → image columns 8..15
    }

    [Fact]
    public void BadInputsFailClearly()
    {
        using var dir = new TempDir();
        TrainTiny(dir, "mask");
        Png(dir["m8.png"], 8, 8, 1, (_, _) => 255);
        Png(dir["black.png"], 16, 16, 1, (_, _) => 0);
        Png(dir["white.png"], 16, 16, 1, (_, _) => 255);
        Png(dir["big.png"], 32, 32, 1, (_, _) => 9);
        Png(dir["rgb.png"], 16, 16, 3, (_, _) => 9);
        File.WriteAllText(dir["junk.png"], "not an image");

        void Fails(string[] extra, params string[] expected)
        {
            string[] args = ["edit", "--checkpoint", dir["run"], "--device", "cpu", "--out", dir["x.png"], .. extra];
            var r = CliRunner.Run(args);
            Assert.True(r.ExitCode != 0, $"snce {string.Join(' ', args)} should fail");
            foreach (var e in expected) Assert.Contains(e, r.Stderr);
            Assert.StartsWith("snce: error:", r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
        }

        var input = new[] { "--image", dir["in.png"] };
        Fails([.. input, "--mask", dir["m8.png"]], "8x8 pixels", "16x16");
        Fails([.. input, "--mask", dir["black.png"]], "nothing to regenerate");
        Fails([.. input, "--mask", dir["white.png"]], "nothing of the image is kept", "snce sample");
        Fails([.. input, "--box", "10,10,8,8"], "reaches outside the 16x16 image");
        Fails([.. input, "--box", "1,2,3"], "cannot read --box '1,2,3'");
        Fails([.. input, "--outpaint", "up"], "unknown outpainting side 'up'");
        Fails([.. input], "exactly one region");
        Fails([.. input, "--box", "0,0,4,4", "--outpaint", "left"], "exactly one region");
        Fails(["--image", dir["big.png"], "--box", "0,0,4,4"], "32x32 pixels but the tokenizer takes 16x16", "--fit");
        Fails(["--image", dir["rgb.png"], "--box", "0,0,4,4"], "3 channels (RGB) but the tokenizer takes 1 channel (gray)", "--fit");
        Fails(["--image", dir["junk.png"], "--box", "0,0,4,4"], "not a readable image");
        Fails(["--image", dir["nothing.png"], "--box", "0,0,4,4"], "no such image file");
        Fails([.. input, "--box", "0,0,4,4", "--class", "7"], "class 7 is out of range");
        Fails([.. input, "--box", "0,0,4,4", "--n", "0"], "--n must be");
        var r = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["in.png"], "--box", "0,0,4,4", "--out", dir["x.jpg"], "--device", "cpu");
        Assert.Contains(".png", r.Stderr);
    }

    [Fact]
    public void HelpDescribesTheRegionsAndTheRule()
    {
        var r = CliRunner.Run("edit", "--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var flag in new[] { "--mask", "--box", "--outpaint", "--outpaint-fraction", "--class", "--cfg", "--cfg-schedule", "--n", "--seed", "--json", "--fit", "--out" })
            Assert.Contains(flag, r.Stdout);
        Assert.Contains("pixel footprint", r.Stdout);
        Assert.Contains("edit", CliRunner.Run("--help").Stdout);
    }
}
