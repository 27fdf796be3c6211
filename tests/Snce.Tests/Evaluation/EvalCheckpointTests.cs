using System.Text.Json;
using Snce.Evaluation.Reports;
using Snce.Tests.Support;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

/// <summary>
/// 'snce eval --checkpoint': a tiny generator trained for 2 steps on synthetic tokens of an untrained tiny
/// tokenizer (16 px gray, 4×4 tokens, K = 16, classes a–d), sampled class-balanced, decoded, evaluated against a
/// 16 px real image folder with the same classes. Checks the plumbing and the reported fields, not image quality.
/// </summary>
public class EvalCheckpointTests
{
    [Fact]
    public void SamplesDecodesAndEvaluatesARun()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["tokens"]);
        var train = CliRunner.Run("train", "ar", "--tokens", dir["tokens"], "--preset", "tiny", "--batch", "16", "--steps", "2", "--log-every", "1",
            "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", dir["run"]);
        Assert.True(train.ExitCode == 0, train.Stderr);

        // Real images: the first 80 of the real sample at 16 px, as a folder with classes a–d (20 each).
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

        var r = CliRunner.Run("eval", "--checkpoint", dir["run"], "--n", "12", "--seed", "3", "--cfg", "1.5", "--data", dir["data"], "--classifier", dir["clf"],
            "--cache-dir", dir["cache"], "--device", "cpu", "--json", "--log-to", dir["run"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(r.Stdout);
        var o = json.RootElement;
        Assert.Equal(12, o.GetProperty("n").GetInt32());
        Assert.Equal(3, o.GetProperty("seed").GetInt64());
        Assert.Equal(1.5, o.GetProperty("cfg").GetDouble());
        Assert.Equal("constant", o.GetProperty("cfg_schedule").GetString());
        Assert.Equal(2, o.GetProperty("step").GetInt64());
        Assert.True(double.IsFinite(o.GetProperty("fd").GetDouble()));
        Assert.InRange(o.GetProperty("class_accuracy").GetDouble(), 0, 1);
        Assert.InRange(o.GetProperty("classifier_held_out_accuracy").GetDouble(), 0, 1);
        Assert.True(o.GetProperty("val_ce").GetDouble() > 0, "the trainer's final validation CE should be reported");
        Assert.Equal(2, o.GetProperty("val_ce_step").GetInt64());
        // Where the time went: every phase of a checkpoint evaluation, non-negative, summing to the reported total.
        var phases = o.GetProperty("phase_seconds").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        Assert.Equal(["load_checkpoint", "sampling", "training_sequences", "other", "load_resnet18", "real_features", "validation_nearest_train", "generated_features", "fd", "precision_recall", "class_accuracy", "memorization"], phases.Keys);
        Assert.All(phases.Values, v => Assert.True(v >= 0));
        Assert.InRange(phases.Values.Sum(), 0, o.GetProperty("seconds").GetDouble() + 0.1);
        // The eval record landed in the run's log where 'snce report' finds it.
        var metrics = RunReader.Read(dir["run"]);
        Assert.Equal(2, metrics.Fd.Single().Step);

        // The same seed gives the same images, hence the same FD.
        var again = CliRunner.Run("eval", "--checkpoint", dir["run"], "--n", "12", "--seed", "3", "--cfg", "1.5", "--data", dir["data"],
            "--cache-dir", dir["cache"], "--device", "cpu", "--json");
        using var json2 = JsonDocument.Parse(again.Stdout);
        Assert.Equal(o.GetProperty("fd").GetDouble(), json2.RootElement.GetProperty("fd").GetDouble(), 6);

        // The default batch on the CPU is 64 (n = 12 fits one batch): an explicit --sample-batch 12 draws the same images.
        var batched = CliRunner.Run("eval", "--checkpoint", dir["run"], "--n", "12", "--seed", "3", "--cfg", "1.5", "--sample-batch", "12", "--data", dir["data"],
            "--cache-dir", dir["cache"], "--device", "cpu", "--json");
        using var json3 = JsonDocument.Parse(batched.Stdout);
        Assert.Equal(o.GetProperty("fd").GetDouble(), json3.RootElement.GetProperty("fd").GetDouble(), 6);
        var zero = CliRunner.Run("eval", "--checkpoint", dir["run"], "--n", "12", "--sample-batch", "0", "--data", dir["data"], "--cache-dir", dir["cache"], "--device", "cpu");
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, zero.ExitCode);
        Assert.Contains("--sample-batch must be at least 1", zero.Stderr);

        var both = CliRunner.Run("eval", "--checkpoint", dir["run"], "--images", dir["x.npy"], "--data", dir["data"], "--device", "cpu");
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, both.ExitCode);
        Assert.Contains("exactly one of --images", both.Stderr);
    }
}
