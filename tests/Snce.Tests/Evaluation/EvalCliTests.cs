using System.Text.Json;
using Snce.IO;
using Snce.Tests.Support;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

/// <summary>
/// The verbs end to end on the real sample: an image folder (one subfolder per class) as the data set, a classifier
/// trained by 'snce classifier train', and 'snce eval' on a .npy of images with labels.
/// </summary>
public class EvalCliTests : IDisposable
{
    readonly TempDir dir = new();
    readonly string dataDir, classifierDir, imagesNpy, labelsNpy;

    public EvalCliTests()
    {
        dataDir = dir["data"];
        var images = RealSample.Images;
        var labels = RealSample.Labels.data<long>().ToArray();
        for (var i = 0; i < labels.Length; i++)
        {
            var classDir = Path.Combine(dataDir, $"c{labels[i]}");
            Directory.CreateDirectory(classDir);
            using var fs = File.Create(Path.Combine(classDir, $"{i:D4}.png"));
            new ImageWriter().WritePng(images[i].contiguous().bytes.ToArray(), 28, 28, ColorComponents.Grey, fs);
        }
        imagesNpy = dir["generated.npy"];
        labelsNpy = dir["labels.npy"];
        Npy.Save(imagesNpy, images.narrow(0, 0, 100));
        Npy.Save(labelsNpy, RealSample.Labels.narrow(0, 0, 100));
        classifierDir = dir["classifier"];
    }

    public void Dispose() => dir.Dispose();

    string[] Eval(params string[] extra) =>
        ["eval", "--images", imagesNpy, "--data", dataDir, "--cache-dir", dir["cache"], "--device", "cpu", .. extra];

    [Fact]
    public void TrainsAClassifierAndEvaluatesImagesWithIt()
    {
        var train = CliRunner.Run("classifier", "train", "--data", dataDir, "--steps", "30", "--width", "4", "--batch", "32", "--out", classifierDir, "--device", "cpu", "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);
        using (var doc = JsonDocument.Parse(train.Stdout))
            Assert.InRange(doc.RootElement.GetProperty("held_out_accuracy").GetDouble(), 0, 1);

        var r = CliRunner.Run(Eval("--labels", labelsNpy, "--classifier", classifierDir, "--json"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        Assert.Equal(100, root.GetProperty("n").GetInt32());
        Assert.True(root.GetProperty("fd").GetDouble() > 0);
        Assert.InRange(root.GetProperty("precision").GetDouble(), 0, 1);
        Assert.InRange(root.GetProperty("recall").GetDouble(), 0, 1);
        Assert.InRange(root.GetProperty("class_accuracy").GetDouble(), 0, 1);
        Assert.InRange(root.GetProperty("classifier_held_out_accuracy").GetDouble(), 0, 1);
        Assert.Equal("FD-ResNet18", root.GetProperty("fd_name").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("val_ce").ValueKind);
        // One cached reference per split: validation (FD) and training (memorization metrics).
        Assert.Equal(["train", "val"], Directory.GetFiles(dir["cache"], "*.safetensors").Select(f => Path.GetFileName(f).Split('-')[2].TrimEnd("0123456789".ToCharArray())).Order());
        Assert.InRange(root.GetProperty("nn_ratio").GetDouble(), 0, 10);
        Assert.True(root.GetProperty("fd_train").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("copy_fraction").ValueKind);      // --images carry no tokens

        // Text output, from the cached reference, and an eval record appended to a run folder.
        Directory.CreateDirectory(dir["run"]);
        var text = CliRunner.Run(Eval("--n", "50", "--log-to", dir["run"], "--step", "700"));
        Assert.True(text.ExitCode == 0, text.Stderr);
        Assert.Contains("FD-ResNet18", text.Stdout);
        Assert.Contains("50 generated", text.Stdout);
        var line = File.ReadAllLines(Path.Combine(dir["run"], "metrics.jsonl")).Single();
        using var rec = JsonDocument.Parse(line);
        Assert.Equal(700, rec.RootElement.GetProperty("step").GetInt64());
        Assert.Equal("eval", rec.RootElement.GetProperty("split").GetString());
        Assert.True(rec.RootElement.GetProperty("fd").GetDouble() > 0);
    }

    [Fact]
    public void BadInputsFailClearly()
    {
        var one = CliRunner.Run(Eval("--n", "1"));
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, one.ExitCode);
        Assert.Contains("at least 2", one.Stderr);

        var rgb = dir["rgb.npy"];
        using (var x = zeros([4, 3, 28, 28], ScalarType.Byte)) Npy.Save(rgb, x);
        var wrong = CliRunner.Run(["eval", "--images", rgb, "--data", dataDir, "--cache-dir", dir["cache"], "--device", "cpu"]);
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, wrong.ExitCode);
        Assert.Contains("generated images are [3, 28, 28]", wrong.Stderr);

        var floats = dir["floats.npy"];
        using (var x = zeros(4, 1, 28, 28)) Npy.Save(floats, x);
        var f = CliRunner.Run(["eval", "--images", floats, "--data", dataDir, "--device", "cpu"]);
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, f.ExitCode);
        Assert.Contains("must be uint8 [N, C, H, W]", f.Stderr);

        var missing = CliRunner.Run(["eval", "--images", dir["none.npy"], "--data", dataDir, "--device", "cpu"]);
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, missing.ExitCode);
        Assert.Contains("none.npy", missing.Stderr);

        var noStep = CliRunner.Run(Eval("--log-to", dir.Path));
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, noStep.ExitCode);
        Assert.Contains("--step", noStep.Stderr);
    }
}
