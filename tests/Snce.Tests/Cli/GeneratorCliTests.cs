using Snce.IO;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Cli;

public class GeneratorCliTests
{
    static string[] Train(string kind, string tokens, string run, params string[] extra) =>
        ["train", kind, "--tokens", tokens, "--preset", "tiny", "--batch", "16", "--lr", "3e-3", "--log-every", "10",
         "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", run, .. extra];

    /// <summary>One warmup default: <c>snce train</c> without --warmup records the library's <see cref="Snce.Training.TrainingConfig.DefaultWarmupSteps"/>.</summary>
    [Fact]
    public void TrainWithoutWarmupRecordsTheLibrarysDefault()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        foreach (var (run, extra, expected) in new (string, string[], long)[] { ("default", [], new Snce.Training.TrainingConfig { Steps = 260 }.WarmupSteps), ("given", ["--warmup", "7"], 7) })
        {
            var r = CliRunner.Run(Train("ar", dir["tokens"], dir[run], ["--steps", "260", "--max-steps", "1", .. extra]));
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(expected, Snce.Training.GeneratorCheckpoint.ReadManifest(dir[run]).Training.WarmupSteps);
        }
        Assert.Equal(13L, new Snce.Training.TrainingConfig { Steps = 260 }.WarmupSteps);           // 5 % of 260: not the old library constant 500
    }

    [Fact]
    public void TrainResumeAndSampleTheClassPattern()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards(count: 144)) shards.Save(dir["tokens"]);
        var first = CliRunner.Run(Train("ar", dir["tokens"], dir["run"], "--steps", "60", "--max-steps", "30"));
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("stopped at step 30", first.Stdout);
        var second = CliRunner.Run("train", "--resume", dir["run"], "--device", "cpu");
        Assert.True(second.ExitCode == 0, second.Stderr);
        Assert.Contains("resuming", second.Stdout);
        Assert.Contains("finished 60 steps", second.Stdout);

        var s = CliRunner.Run("sample", "--checkpoint", dir["run"], "--class", "1,2", "--n", "6", "--cfg", "1", "--temperature", "0",
            "--weights", "raw", "--device", "cpu", "--out", dir["s.npy"]);
        Assert.True(s.ExitCode == 0, s.Stderr);
        using var ids = Npy.Load(dir["s.npy"]).to_type(ScalarType.Int64);            // [6, 4, 4]
        Assert.Equal([6, 4, 4], ids.shape);
        // The data: x_i = (3c + i) mod 16, with 10% noise. Greedy samples should mostly follow it.
        var classes = tensor(new long[] { 1, 2, 1, 2, 1, 2 }).unsqueeze(1);
        using var expected = (classes * 3 + arange(16).unsqueeze(0)) % 16;
        var match = (ids.view(6, 16) == expected).to_type(ScalarType.Float32).mean().item<float>();
        Assert.True(match > 0.7, $"only {match:P0} of sampled tokens follow the class pattern");
        Assert.Contains("\"labels\"", File.ReadAllText(dir["s.labels.json"]));

        // A linear guidance ramp at --cfg 1 is the conditional model at every token: the same ids; the sidecar names the schedule.
        var linear = CliRunner.Run("sample", "--checkpoint", dir["run"], "--class", "1,2", "--n", "6", "--cfg", "1", "--cfg-schedule", "linear", "--temperature", "0",
            "--weights", "raw", "--device", "cpu", "--out", dir["linear.npy"]);
        Assert.True(linear.ExitCode == 0, linear.Stderr);
        Assert.Equal(File.ReadAllBytes(dir["s.npy"]), File.ReadAllBytes(dir["linear.npy"]));
        Assert.Contains("\"cfg_schedule\": \"linear\"", File.ReadAllText(dir["linear.labels.json"]));
        Assert.Contains("\"cfg_schedule\": \"constant\"", File.ReadAllText(dir["s.labels.json"]));
    }

    [Fact]
    public void SamplesDecodeThroughTheTokenizerIntoALabeledPngGrid()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["tokens"]);
        Assert.Equal(0, CliRunner.Run(Train("mask", dir["tokens"], dir["run"], "--steps", "2")).ExitCode);
        var r = CliRunner.Run("sample", "--checkpoint", dir["run"], "--class", "0,3", "--n", "5", "--steps", "3", "--device", "cpu",
            "--singles", dir["singles"], "--out", dir["grid.png"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(new FileInfo(dir["grid.png"]).Length > 0);
        Assert.Equal(5, Directory.GetFiles(dir["singles"], "*.png").Length);
        Assert.Contains("(class 3)", File.ReadAllText(dir["grid.captions.json"]));
        Assert.Equal([5, 4, 4], Npy.Load(dir["grid.tokens.npy"]).shape);
    }

    [Fact]
    public void BadFlagsFailClearly()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["k16"]);
        using (var shards = GeneratorFixtures.Shards(k: 32)) shards.Save(dir["k32"]);

        void Fails(string[] args, params string[] expected)
        {
            var r = CliRunner.Run(args);
            Assert.True(r.ExitCode != 0, $"snce {string.Join(' ', args)} should fail");
            foreach (var e in expected) Assert.Contains(e, r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);                                  // a one-line reason, no stack trace
        }

        Fails(["train", "ar", "--tokens", dir["k16"], "--preset", "XL", "--out", dir["r"], "--device", "cpu"], "unknown preset 'XL'", "tiny, S, B");
        Fails(["train", "diffusion", "--tokens", dir["k16"], "--out", dir["r"], "--device", "cpu"], "unknown generator 'diffusion'", "ar, mask");
        Fails(["train", "ar", "--out", dir["r"], "--device", "cpu"], "--tokens");
        Fails(["train", "ar", "--tokens", dir["nowhere"], "--preset", "tiny", "--out", dir["r"], "--device", "cpu"], "not a token shard folder");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss", "snce"), "τ");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss", "snce", "--tau", "0.5", "--anchor", "latent"), "--anchor latent", "latents");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss", "focal"), "unknown loss 'focal'");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss", "ce", "--top-k", "8"), "--loss ce does not read", "--top-k 8", "--loss snce");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss", "snce", "--tau", "0.5", "--epsilon", "0.2"), "--epsilon 0.2", "--loss label-smoothing");
        Fails(Train("ar", dir["k16"], dir["r"], "--precision", "fp8"), "unknown precision 'fp8'");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss-implementation", "triton"), "unknown loss implementation 'triton'", "reference, fused");
        Fails(Train("ar", dir["k16"], dir["r"], "--loss", "stochastic", "--loss-implementation", "fused"), "no fused stochastic", "reference");
        Fails(Train("ar", dir["k16"], dir["r"], "--time-limit", "soon"), "--time-limit");

        Assert.Equal(0, CliRunner.Run(Train("ar", dir["k16"], dir["r"], "--steps", "2")).ExitCode);
        Fails(Train("ar", dir["k16"], dir["r"], "--steps", "2"), "already holds", "--resume");
        Fails(["train", "--resume", dir["r"], "--tokens", dir["k32"], "--device", "cpu"], "codebook size mismatch", "K = 32", "K = 16");
        Fails(["train", "mask", "--resume", dir["r"], "--device", "cpu"], "is a ar run");
        Fails(["sample", "--checkpoint", dir["r"], "--class", "9", "--out", dir["x.npy"], "--device", "cpu"], "class 9 is out of range");
        Fails(["sample", "--checkpoint", dir["nothing"], "--out", dir["x.npy"], "--device", "cpu"], "no generator checkpoint");
        Fails(["sample", "--checkpoint", dir["r"], "--out", dir["x.jpg"], "--device", "cpu"], ".png", ".npy");
    }

    [Fact]
    public void TrainHelpListsPresetsWithParameterCounts()
    {
        var r = CliRunner.Run("train", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("B: 12 layers, d 768, 12 heads, 110.9M parameters", r.Stdout);
        Assert.Contains("S: 12 layers, d 384", r.Stdout);
        Assert.Contains("tiny:", r.Stdout);
    }

    [Fact]
    public void DurationsParse()
    {
        Assert.Equal(TimeSpan.FromSeconds(90), Snce.Cli.Durations.Parse("90s", "--time-limit"));
        Assert.Equal(TimeSpan.FromMinutes(90), Snce.Cli.Durations.Parse("1h30m", "--time-limit"));
        Assert.Equal(TimeSpan.FromSeconds(45), Snce.Cli.Durations.Parse("45", "--time-limit"));
        Assert.Null(Snce.Cli.Durations.Parse(null, "--time-limit"));
        Assert.Equal(TimeSpan.FromMinutes(5), Snce.Cli.Durations.Parse("5m", "--max-seconds"));
        Assert.Equal(TimeSpan.FromHours(1), Snce.Cli.Durations.Parse("1h", "--max-seconds"));
        foreach (var bad in new[] { "soon", "-5", "0", "5x", "m" })
            Assert.Contains("cannot read --max-seconds", Assert.Throws<ArgumentException>(() => Snce.Cli.Durations.Parse(bad, "--max-seconds")).Message);
    }
}
