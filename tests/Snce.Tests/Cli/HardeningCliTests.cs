using System.Diagnostics;
using System.Text.Json.Nodes;
using Snce.Data;
using Snce.IO;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Cli;

/// <summary>Issue #17: no lost work, no stack traces, no silent wrong results, through the verbs themselves.</summary>
public class HardeningCliTests
{
    static string[] Train(string tokens, string run, params string[] extra) =>
        ["train", "ar", "--tokens", tokens, "--preset", "tiny", "--batch", "16", "--log-every", "1",
         "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", run, .. extra];

    [Fact]
    public void ASecondWriterOfARunFolderFailsAtOnceNamingThePid()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        using var held = FolderLock.Acquire(dir["run"], "snce train");
        var r = CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "2"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"is in use by another process (PID {Environment.ProcessId}, snce train", r.Stderr);
        Assert.False(Directory.Exists(dir["run"]));
    }

    [Fact]
    public void EvalLogToARunInUseFailsAtOnceNamingThePid()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["run"]);
        using var held = FolderLock.Acquire(dir["run"], "snce train");
        var r = CliRunner.Run("eval", "--checkpoint", dir["run"], "--log-to", dir["run"], "--data", "/nonexistent-data", "--device", "cpu");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"is in use by another process (PID {Environment.ProcessId}, snce train", r.Stderr);   // before the data or checkpoint is read
        var best = CliRunner.Run("eval", "--checkpoint", dir["run"], "--keep-best", "fd", "--data", "/nonexistent-data", "--device", "cpu");
        Assert.Contains("is in use by another process", best.Stderr);
    }

    [Fact]
    public void TokenizeRefusesANonEmptyOutputUnlessOverwrite()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var r = CliRunner.Run("tokenize", "--tokenizer", dir["nope"], "--data", "mnist", "--out", dir["tokens"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("already holds token shards (runs may train on them); choose another --out, or pass --overwrite", r.Stderr);
        Assert.True(File.Exists(Path.Combine(dir["tokens"], TokenShards.InfoFile)));
        // With --overwrite it gets past that check (and then fails on the missing tokenizer, not on the folder).
        var o = CliRunner.Run("tokenize", "--tokenizer", dir["nope"], "--data", "mnist", "--out", dir["tokens"], "--overwrite");
        Assert.Contains("is not a tokenizer checkpoint", o.Stderr);
    }

    [Theory]
    [InlineData("tokenizer", "train")]
    [InlineData("classifier", "train")]
    [InlineData("tokenize", null)]
    public void AnUnwritableOutIsCheckedBeforeAnyWork(string verb, string? sub)
    {
        var args = new List<string> { verb };
        if (sub is not null) args.Add(sub);
        args.AddRange(verb == "tokenize" ? ["--tokenizer", "/nonexistent", "--data", "mnist"] : ["--data", "/nonexistent-data-folder"]);
        args.AddRange(["--device", "cpu", "--out", "/proc/snce-x"]);
        var clock = Stopwatch.StartNew();
        var r = CliRunner.Run([.. args]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("snce: error: cannot write to '/proc/snce-x'", r.Stderr);      // before the data or tokenizer is even looked at
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    static List<long> TrainSteps(string log) => File.ReadAllLines(log).Select(l => JsonNode.Parse(l)!)
        .Where(r => (string?)r["split"] == "train").Select(r => (long)r["step"]!).ToList();

    [Fact]
    public void ANewRunSetsAsideTheStaleLogOfAKilledRun()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        Directory.CreateDirectory(dir["run"]);
        File.WriteAllText(Path.Combine(dir["run"], "metrics.jsonl"), "{\"step\":1,\"split\":\"train\",\"loss\":99}\n{\"step\":2,\"split\":\"train\",\"loss\":98}\n");
        var r = CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "3"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("held the log of a run that never saved a checkpoint (2 records); starting clean", r.Stderr);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(dir["run"], "metrics.jsonl.stale")).Length);
        var steps = TrainSteps(Path.Combine(dir["run"], "metrics.jsonl"));
        Assert.Equal([1, 2, 3], steps);
        var losses = File.ReadAllLines(Path.Combine(dir["run"], "metrics.jsonl")).Select(l => JsonNode.Parse(l)!["loss"]?.GetValue<double>()).ToList();
        Assert.DoesNotContain(99.0, losses);                                            // the killed run's records are gone, not merged
        Assert.DoesNotContain(98.0, losses);
    }

    [Fact]
    public void AResumeDropsRecordsLoggedAfterTheCheckpointSoNoStepRepeats()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        Assert.Equal(0, CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "4", "--max-steps", "2")).ExitCode);
        var log = Path.Combine(dir["run"], "metrics.jsonl");
        File.AppendAllText(log, "{\"step\":3,\"split\":\"train\",\"loss\":1}\n{\"step\":4,\"spl");   // a run killed after step 3, mid-line
        var r = CliRunner.Run("train", "--resume", dir["run"], "--device", "cpu");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("dropped 2 metrics records logged after the checkpoint's step 2", r.Stderr);
        var steps = TrainSteps(log);
        Assert.Equal([1, 2, 3, 4], steps);
    }

    [Fact]
    public void AnEditedNegativeStepIsRejected()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        Assert.Equal(0, CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "2")).ExitCode);
        var manifest = Path.Combine(dir["run"], "checkpoint", "checkpoint.json");
        var json = JsonNode.Parse(File.ReadAllText(manifest))!;
        json["state"]!["step"] = -5;
        File.WriteAllText(manifest, json.ToJsonString());
        var r = CliRunner.Run("train", "--resume", dir["run"], "--device", "cpu");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("the state (step -5, epoch", r.Stderr);
        Assert.Contains("negative or non-finite", r.Stderr);
    }

    [Fact]
    public void UnlabeledImagesAreFlaggedAndLabelsBelowMinusOneRefused()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards())
        {
            shards.Labels.narrow(0, 0, 10).fill_(-1);
            shards.Save(dir["tokens"]);
        }
        var r = CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "1"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("10 of 80 images in", r.Stderr);
        Assert.Contains("have no label (−1): they train as unconditional", r.Stderr);

        var labels = Path.Combine(dir["tokens"], "labels.npy");
        using (var l = Npy.Load(labels)) { l[0] = -3; Npy.Save(labels, l); }
        var bad = CliRunner.Run(Train(dir["tokens"], dir["run2"], "--steps", "1"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("labels reach -3", bad.Stderr);
    }

    [Fact]
    public void ASwappedTokenizerIsDetectedOnSampleEvalAndResume()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["tokens"]);
        Assert.Equal(0, CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "2", "--max-steps", "1")).ExitCode);
        Assert.Contains("tokenizer_sha256", File.ReadAllText(Path.Combine(dir["run"], "checkpoint", "checkpoint.json")));

        // Another tokenizer with the same K and grid, and shards made with it.
        GeneratorFixtures.SaveTokenizerAndShards(dir["other-tokenizer"], dir["other-tokens"], seed: 99);
        var sample = CliRunner.Run("sample", "--checkpoint", dir["run"], "--n", "2", "--device", "cpu", "--tokenizer", dir["other-tokenizer"], "--out", dir["s.png"]);
        Assert.Equal(1, sample.ExitCode);
        Assert.Contains($"the tokenizer in '{dir["other-tokenizer"]}' (weights sha256", sample.Stderr);
        Assert.False(File.Exists(dir["s.png"]));
        // eval --checkpoint samples through CheckpointImageSource.
        var eval = Assert.Throws<InvalidDataException>(() => new Snce.Evaluation.CheckpointImageSource(dir["run"], CPU,
            new Snce.Sampling.GeneratorSamplingOptions(new Snce.Sampling.TokenSamplingOptions(1.0)), tokenizerDir: dir["other-tokenizer"]));
        Assert.Contains("is not the one the generator in", eval.Message);

        var resume = CliRunner.Run("train", "--resume", dir["run"], "--tokens", dir["other-tokens"], "--device", "cpu");
        Assert.Equal(1, resume.ExitCode);
        Assert.Contains("was made by another tokenizer", resume.Stderr);
        // The right one still works.
        Assert.Equal(0, CliRunner.Run("train", "--resume", dir["run"], "--device", "cpu").ExitCode);
    }

    [Theory]
    [InlineData("nan")]
    [InlineData("1e30")]
    [InlineData("-1")]
    [InlineData("Infinity")]
    public void GuidanceOutsideItsRangeIsRefusedBeforeAnyOutput(string cfg)
    {
        using var dir = new TempDir();
        var r = CliRunner.Run("sample", "--checkpoint", dir["missing-run"], "--cfg", cfg, "--device", "cpu", "--out", dir["t.npy"]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--cfg must be a number in [0, 100]", r.Stderr);
        Assert.False(File.Exists(dir["t.npy"]));
        // edit and study read the same option; the samplers themselves refuse it too (a library caller has no CLI check).
        var edit = CliRunner.Run("edit", "--checkpoint", dir["missing-run"], "--image", dir["x.png"], "--box", "0,0,4,4", "--cfg", cfg, "--out", dir["e.png"]);
        Assert.Contains("--cfg must be a number in [0, 100]", edit.Stderr);
        var study = CliRunner.Run("study", "--cfg", cfg, "--device", "cpu", "--out", dir["study"]);
        Assert.Contains("--cfg must be a number in [0, 100]", study.Stderr);
        Assert.False(Directory.Exists(dir["study"]));
        using var c = zeros(2, 3);
        Assert.Contains("the CFG scale must be a number in [0, 100]",
            Assert.Throws<ArgumentException>(() => Snce.Sampling.Guidance.Conditions(c, c, double.Parse(cfg, System.Globalization.CultureInfo.InvariantCulture))).Message);
    }

    [Fact]
    public void AnUnknownGuidanceScheduleIsRefusedNamingTheAllowedOnes()
    {
        using var dir = new TempDir();
        string[][] verbs =
        [
            ["sample", "--checkpoint", dir["missing-run"], "--out", dir["t.npy"]],
            ["edit", "--checkpoint", dir["missing-run"], "--image", dir["x.png"], "--box", "0,0,4,4", "--out", dir["e.png"]],
            ["eval", "--checkpoint", dir["missing-run"], "--data", dir["data"]],
            ["study", "--out", dir["study"]],
        ];
        foreach (var verb in verbs)
        {
            var r = CliRunner.Run([.. verb, "--cfg-schedule", "cosine", "--device", "cpu"]);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("cosine", r.Stderr);
            Assert.Contains("linear", r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
        }
        Assert.False(Directory.Exists(dir["study"]));
    }

    [Fact]
    public void ANonFiniteTokenizerIsRefusedAndSinglesAreBareImagesAtTheDataSetsSize()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["tokens"]);
        Assert.Equal(0, CliRunner.Run(Train(dir["tokens"], dir["run"], "--steps", "1")).ExitCode);
        var ok = CliRunner.Run("sample", "--checkpoint", dir["run"], "--n", "3", "--device", "cpu", "--singles", dir["singles"], "--out", dir["g.png"]);
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        var files = Directory.GetFiles(dir["singles"], "*.png");
        Assert.Equal(3, files.Length);
        foreach (var f in files) Assert.Equal((16, 16, true), ImageFiles.Probe(f));          // the fixture tokenizer's 16×16 gray images, no gutter

        // A NaN in the tokenizer's codebook: a clear error, nothing written (and the identity check comes first).
        var weights = Path.Combine(dir["tokenizer"], "model.safetensors");
        var (tensors, meta) = Safetensors.Load(weights);
        var key = tensors.Keys.First(k => k.EndsWith(".codebook"));
        tensors[key][0, 0] = float.NaN;
        Safetensors.Save(weights, tensors, meta);
        foreach (var t in tensors.Values) t.Dispose();
        var bad = CliRunner.Run("sample", "--checkpoint", dir["run"], "--n", "3", "--device", "cpu", "--out", dir["bad.png"]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("is not the one the generator", bad.Stderr);
        // Re-recorded identity (as if the NaN had been there at training time): now the NaN itself is named.
        var manifest = Path.Combine(dir["run"], "checkpoint", "checkpoint.json");
        var json = JsonNode.Parse(File.ReadAllText(manifest))!;
        json["data"]!["tokenizer_sha256"] = Snce.Tokenizer.TokenizerCheckpoint.Identity(dir["tokenizer"]);
        File.WriteAllText(manifest, json.ToJsonString());
        var nan = CliRunner.Run("sample", "--checkpoint", dir["run"], "--n", "3", "--device", "cpu", "--out", dir["bad.png"]);
        Assert.Equal(1, nan.ExitCode);
        Assert.Contains("has NaN or infinite values", nan.Stderr);
        Assert.False(File.Exists(dir["bad.png"]));
    }

    [Theory]
    [InlineData(new[] { "tokenizer", "eval", "--bogus" }, "(see 'snce tokenizer eval --help')")]
    [InlineData(new[] { "data", "info", "mnist", "--channels", "x" }, "(see 'snce data info --help')")]
    [InlineData(new[] { "train", "ar", "--steps", "many" }, "(see 'snce train --help')")]
    public void ParseErrorsPointToTheRightVerbsHelp(string[] args, string expected)
    {
        var r = CliRunner.Run(args);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
    }
}
