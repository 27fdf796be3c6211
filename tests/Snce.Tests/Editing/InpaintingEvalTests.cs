using Snce.Data;
using System.Text.Json;
using Snce.Editing;
using Snce.Evaluation;
using Snce.Tests.Evaluation;
using Snce.Tests.Support;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

public class InpaintingEvalTests
{
    [Fact]
    public void RegionScoresCountOnlyTheRegionsPixels()
    {
        using var scope = NewDisposeScope();
        // x = y + 51 inside a 3×2 box, y − 100 outside it: L1 in the box = 51/255 = 0.2, PSNR = −20·log10(0.2) = 13.979 dB.
        var y = full(2, 3, 8, 8, 100, ScalarType.Byte);
        var x = full(2, 3, 8, 8, 0, ScalarType.Byte);
        x.narrow(2, 1, 2).narrow(3, 4, 3).fill_(151);
        var box = new EditRegion.Box(4, 1, 3, 2).ToPixels(8, 8);
        Assert.Equal(6, box.Count);
        var l1 = InpaintingQuality.L1(x, y, box);
        var psnr = InpaintingQuality.Psnr(x, y, box);
        Assert.Equal(0.2, l1[0].item<float>(), 5);
        Assert.Equal(-20 * Math.Log10(0.2), psnr[1].item<float>(), 3);
        Assert.Equal(100, InpaintingQuality.Psnr(y, y, box)[0].item<float>(), 3);           // identical: the MSE floor
        Assert.Contains("no pixels", Assert.Throws<ArgumentException>(() => InpaintingQuality.L1(x, y, new PixelMask(new bool[64], 8, 8))).Message);
    }

    [Fact]
    public void EvaluationRowsSpreadOverAClassOrderedValidationSplit()
    {
        using var scope = NewDisposeScope();
        // 24 images stored class by class (6 each of 4 classes); rows 0 and 1 of each class are training images, so the
        // validation split is 16 rows, 4 per class. The first 4 validation rows would be class 0 only.
        var labels = arange(24, ScalarType.Int64).div(6, rounding_mode: RoundingMode.floor);
        var split = tensor(Enumerable.Range(0, 24).Select(i => i % 6 < 2 ? ImageDataset.TrainSplit : ImageDataset.ValidationSplit).ToArray());
        using var real = new ImageDataset { Name = "ordered", Images = zeros(24, 1, 4, 4, ScalarType.Byte), Labels = labels, Split = split, Classes = ["a", "b", "c", "d"] };
        var rows = InpaintingEvaluation.Rows(real, 4);
        Assert.Equal(new long[] { 2, 8, 14, 20 }, rows.data<long>().ToArray());                 // validation rows 0, 4, 8, 12 of 16
        Assert.Equal(new long[] { 0, 1, 2, 3 }, real.Labels.index_select(0, rows).data<long>().ToArray());
        Assert.Equal(real.IndicesOf(ImageDataset.ValidationSplit).data<long>().ToArray(), InpaintingEvaluation.Rows(real, 16).data<long>().ToArray());
        Assert.Contains("16 validation images; --n 17", Assert.Throws<ArgumentException>(() => InpaintingEvaluation.Rows(real, 17)).Message);
        Assert.Equal(new long[] { 0, 2, 5, 7 }, InpaintingEvaluation.Spread(10, 4));                 // what the paired evaluation picks of 10 held-out pairs
    }

    [Fact]
    public void EvalInpaintsTheValidationImagesAndScoresTheRegion()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["tokens"]);
        var train = CliRunner.Run("train", "mask", "--tokens", dir["tokens"], "--preset", "tiny", "--batch", "16", "--steps", "4", "--log-every", "2",
            "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", dir["run"]);
        Assert.True(train.ExitCode == 0, train.Stderr);
        using var real = nn.functional.interpolate(RealSample.Images.narrow(0, 0, 80).to(ScalarType.Float32), size: [16, 16], mode: InterpolationMode.Bilinear)
            .round().clamp(0, 255).to(ScalarType.Byte);
        for (var i = 0; i < 80; i++)
        {
            var classDir = Path.Combine(dir["data"], "abcd"[i % 4].ToString());
            Directory.CreateDirectory(classDir);
            using var fs = File.Create(Path.Combine(classDir, $"{i:D3}.png"));
            new ImageWriter().WritePng(real[i].contiguous().bytes.ToArray(), 16, 16, ColorComponents.Grey, fs);
        }
        var clf = CliRunner.Run("classifier", "train", "--data", dir["data"], "--steps", "5", "--width", "4", "--batch", "16", "--out", dir["clf"], "--device", "cpu");
        Assert.True(clf.ExitCode == 0, clf.Stderr);

        string[] Eval(string region, params string[] extra) =>
            ["eval", "--checkpoint", dir["run"], "--inpaint", region, "--n", "6", "--seed", "2", "--sampling-steps", "3", "--data", dir["data"],
             "--cache-dir", dir["cache"], "--device", "cpu", .. extra];
        var r = CliRunner.Run(Eval("right", "--classifier", dir["clf"], "--json"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(r.Stdout);
        var o = json.RootElement;
        var ip = o.GetProperty("inpainting");
        Assert.Equal(6, ip.GetProperty("n").GetInt32());
        Assert.Equal(8 * 16, ip.GetProperty("region_pixels").GetInt32());
        Assert.Equal(8, ip.GetProperty("region_tokens").GetInt32());
        Assert.Equal(0, ip.GetProperty("tokens_changed_outside").GetInt64());
        Assert.True(ip.GetProperty("psnr_in_region").GetDouble() > 0);
        Assert.InRange(ip.GetProperty("l1_in_region").GetDouble(), 0, 1);
        Assert.InRange(ip.GetProperty("tokens_changed_inside").GetDouble(), 0, 1);
        Assert.Equal("outpaint right 0.5", o.GetProperty("inpaint_region").GetString());
        Assert.True(double.IsFinite(o.GetProperty("fd").GetDouble()));
        Assert.InRange(o.GetProperty("class_accuracy").GetDouble(), 0, 1);

        var text = CliRunner.Run(Eval("center", "--grid", dir["grid.png"]));
        Assert.True(text.ExitCode == 0, text.Stderr);
        var grid = Snce.Data.ImageFiles.Read(dir["grid.png"]);                              // 6 columns × 3 rows of 16-px RGB cells, 2-px gutters
        Assert.Equal((2 + 6 * 18, 2 + 3 * 18, 3), (grid.Width, grid.Height, grid.Channels));
        Assert.Contains("box 4,4,8,8: 64 pixels, 4 of 16 tokens regenerated", text.Stdout);
        Assert.Contains("PSNR in region", text.Stdout);

        var bad = CliRunner.Run(Eval("middle"));
        Assert.Contains("unknown --inpaint region 'middle'", bad.Stderr);
        var outside = CliRunner.Run(Eval("box:12,12,8,8"));
        Assert.Contains("reaches outside the 16x16 image", outside.Stderr);
        var noRun = CliRunner.Run("eval", "--images", dir["x.npy"], "--inpaint", "center", "--data", dir["data"], "--device", "cpu");
        Assert.Contains("--inpaint needs --checkpoint", noRun.Stderr);
    }
}
