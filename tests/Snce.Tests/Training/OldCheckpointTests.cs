using System.Text.Json;
using System.Text.Json.Nodes;
using Snce.IO;
using Snce.Losses;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>
/// Manifests of format snce-generator/1, written by the code of 2026-12-01 (before the loss was resolved once)
/// with the tiny runs in the fixtures' names (GeneratorFixtures.Shards(count: 144, latents: true), 20 steps, stopped at 10):
/// they still load, resume and sample; the loss they resume with is the one they recorded (never recalibrated).
/// </summary>
public class OldCheckpointTests
{
    static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Checkpoints", "v1");

    static CheckpointManifest Read(string name, TempDir dir)
    {
        var run = dir[name];
        Directory.CreateDirectory(Path.Combine(run, "checkpoint"));
        File.Copy(Path.Combine(Fixtures, name + ".json"), Path.Combine(run, "checkpoint", GeneratorCheckpoint.ManifestFile));
        return GeneratorCheckpoint.ReadManifest(run);
    }

    [Fact]
    public void EveryV1LossReadsAsTheResolvedLossItTrainedWith()
    {
        using var dir = new TempDir();
        var snce = Read("ar-snce", dir);
        Assert.Equal(new ResolvedLoss { Kind = LossKind.Snce, Implementation = LossImplementation.Reference, Anchor = NeighborAnchor.Latent, Tau = 1.322073181423296, TopK = 8 }, snce.Loss);
        Assert.Equal(10, snce.State.Step);
        Assert.Equal(GeneratorKind.Autoregressive, snce.Model.Kind);
        Assert.Equal(new ResolvedLoss { Kind = LossKind.Snce, Anchor = NeighborAnchor.Code, Tau = 0.5 }, Read("mask-snce-code", dir).Loss);
        // Label smoothing matched to perplexity 3: v1 stored the matched ε, which the run keeps.
        Assert.Equal(new ResolvedLoss { Kind = LossKind.LabelSmoothing, Anchor = NeighborAnchor.Latent, Epsilon = 0.3168463706970215 }, Read("ar-ls", dir).Loss);
        Assert.Equal(new ResolvedLoss { Kind = LossKind.Stochastic, Anchor = NeighborAnchor.Latent, Alpha = 0.2, Delta = 4 }, Read("ar-stochastic", dir).Loss);
        Assert.Equal(new ResolvedLoss { Kind = LossKind.CrossEntropy }, Read("ar-ce", dir).Loss);
    }

    [Fact]
    public void AnUnknownFormatIsRefusedNamingBoth()
    {
        using var dir = new TempDir();
        var run = dir["run"];
        Directory.CreateDirectory(Path.Combine(run, "checkpoint"));
        var node = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "ar-ce.json")))!.AsObject();
        node["format"] = "snce-generator/9";
        File.WriteAllText(Path.Combine(run, "checkpoint", GeneratorCheckpoint.ManifestFile), node.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => GeneratorCheckpoint.ReadManifest(run));
        Assert.Contains("snce-generator/9", e.Message);
        Assert.Contains(CheckpointManifest.CurrentFormat, e.Message);
    }

    /// <summary>
    /// The v1 SNCE run (τ calibrated to perplexity 4, top-k 8) resumed from its old manifest trains exactly like the same run
    /// written today: weights of a fresh 10-step run under the old manifest, resumed to 20 steps, give the same losses as
    /// resuming today's manifest; the resumed run prints the recorded τ and does not calibrate again; it then samples.
    /// </summary>
    [Fact]
    public void AV1SnceRunResumesBitExactlyAndSamples()
    {
        using var dir = new TempDir();
        using (var s = GeneratorFixtures.Shards(count: 144, latents: true)) s.Save(dir["tokens"]);
        string[] Train(string run) =>
            ["train", "ar", "--tokens", dir["tokens"], "--preset", "tiny", "--batch", "16", "--lr", "3e-3", "--log-every", "10",
             "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", run, "--steps", "20", "--max-steps", "10",
             "--loss", "snce", "--perplexity", "4", "--top-k", "8"];
        var first = CliRunner.Run(Train(dir["today"]));
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("τ = 1.3221 (calibrated", first.Stdout);                              // today's calibration finds the v1 τ
        CopyDirectory(dir["today"], dir["old"]);
        // The old run's manifest, pointed at these shards (the fixture names the folder it was written from).
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "ar-snce.json")))!.AsObject();
        manifest["data"]!["tokens"] = dir["tokens"];
        File.WriteAllText(Path.Combine(dir["old"], "checkpoint", GeneratorCheckpoint.ManifestFile), manifest.ToJsonString());

        var resumedOld = CliRunner.Run("train", "--resume", dir["old"], "--device", "cpu");
        Assert.True(resumedOld.ExitCode == 0, resumedOld.Stderr);
        Assert.Contains("τ = 1.3221, anchor latent", resumedOld.Stdout);                      // the recorded τ, no calibration report
        Assert.Contains("finished 20 steps", resumedOld.Stdout);
        var resumedToday = CliRunner.Run("train", "--resume", dir["today"], "--device", "cpu");
        Assert.True(resumedToday.ExitCode == 0, resumedToday.Stderr);
        Assert.Equal(TrainLosses(dir["today"]), TrainLosses(dir["old"]));
        Assert.Equal(CheckpointManifest.CurrentFormat, GeneratorCheckpoint.ReadManifest(dir["old"]).Format);   // saved again as today's format

        var sample = CliRunner.Run("sample", "--checkpoint", dir["old"], "--class", "1", "--n", "2", "--device", "cpu", "--out", dir["s.npy"]);
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        using var ids = Npy.Load(dir["s.npy"]);
        Assert.Equal([2L, 4, 4], ids.shape);
    }

    static List<double> TrainLosses(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("split").GetString() == "train")
        .Select(e => e.GetProperty("loss").GetDouble()).ToList();

    static void CopyDirectory(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, f.Replace(from, to));
    }
}
