using System.Text.Json;
using Snce.Data;
using Snce.Tests.Support;
using Snce.Tests.Tokenizer;
using Snce.Tokenizer;

namespace Snce.Tests.Cli;

public class TokenizerCommandTests : SingleThreadTests
{
    static readonly string Data = MnistSample.Dir;

    /// <summary>Trains the tiny preset for a few steps; <paramref name="extra"/> adds flags or overrides defaults ("--steps", "5"); "--resume" drops --codebook and --code-dim.</summary>
    static CliRunner.Result Train(string outDir, params string[] extra)
    {
        var options = new Dictionary<string, string?>
        {
            ["--data"] = Data, ["--preset"] = "tiny", ["--codebook"] = "64", ["--code-dim"] = "8", ["--steps"] = "3", ["--batch"] = "4",
            ["--log-every"] = "1", ["--device"] = "cpu", ["--out"] = outDir,
        };
        if (extra.Contains("--resume")) { options.Remove("--codebook"); options.Remove("--code-dim"); }
        for (var i = 0; i < extra.Length; i++)
            options[extra[i]] = i + 1 < extra.Length && !extra[i + 1].StartsWith("--") ? extra[++i] : null;
        var args = new List<string> { "tokenizer", "train" };
        foreach (var (name, value) in options) { args.Add(name); if (value is not null) args.Add(value); }
        return CliRunner.Run([.. args]);
    }

    [Fact]
    public void TrainEvalTokenizeEndToEnd()
    {
        using var dir = new TempDir();
        var train = Train(dir["tok"], "--metric", "dot", "--quantizer", "ibq", "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);
        using (var doc = JsonDocument.Parse(train.Stdout))
        {
            Assert.Equal(3, doc.RootElement.GetProperty("step").GetInt64());
            Assert.Equal(64, doc.RootElement.GetProperty("codebook_size").GetInt32());
        }
        Assert.Contains("train [", train.Stderr);                                 // progress bar
        Assert.Contains("util", train.Stderr);

        // --resume continues from step 3 to 5.
        var resumed = Train(dir["tok"], "--resume", "--steps", "5");
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains("resuming at step 3", resumed.Stderr);
        Assert.Equal(5, TokenizerCheckpoint.LoadState(dir["tok"])!.Step);

        // eval: the data set comes from training.json; JSON has the documented fields; the grid is written.
        var eval = CliRunner.Run("tokenizer", "eval", "--tokenizer", dir["tok"], "--device", "cpu", "--json", "--samples", "8");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        using (var doc = JsonDocument.Parse(eval.Stdout))
        {
            var r = doc.RootElement;
            foreach (var field in new[] { "psnr", "ssim", "utilization", "perplexity", "codebook_size", "images" })
                Assert.True(r.TryGetProperty(field, out _), $"eval --json lacks '{field}'");
            Assert.Equal(42, r.GetProperty("images").GetInt32());                // the validation split
            Assert.Equal(64, r.GetProperty("codebook_size").GetInt32());
            Assert.InRange(r.GetProperty("utilization").GetDouble(), 1.0 / 64, 1);
            Assert.InRange(r.GetProperty("perplexity").GetDouble(), 1, 64);
            Assert.True(File.Exists(r.GetProperty("grid").GetString()));
        }

        // tokenize: shards that TokenShards.Load accepts, with the costs recorded.
        var tok = CliRunner.Run("tokenize", "--tokenizer", dir["tok"], "--data", Data, "--out", dir["shards"], "--neighbors-k", "4",
            "--latents", "topk", "--device", "cpu");
        Assert.True(tok.ExitCode == 0, tok.Stderr);
        Assert.Contains("bytes per image", tok.Stdout);
        using var shards = TokenShards.Load(dir["shards"]);
        Assert.Equal((250, 64, 4, "dot"), (shards.Info.Count, shards.Info.CodebookSize, shards.Info.NeighborsK, shards.Info.Metric));
        Assert.Equal(64L * 4 * 8, shards.Info.BytesPerImage["latent_neighbors"]);
        Assert.Equal(Path.GetFullPath(Data), shards.Info.Data);
    }

    [Fact]
    public void MissingTokenizerFolderFailsClearly()
    {
        using var dir = new TempDir();
        foreach (var verb in new[] { new[] { "tokenizer", "eval" }, new[] { "tokenize", "--data", Data, "--out", dir["s"] } })
        {
            var r = CliRunner.Run([.. verb, "--tokenizer", dir["nope"], "--device", "cpu"]);
            Assert.Equal(1, r.ExitCode);
            var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("not a tokenizer checkpoint", line);
            Assert.Contains("snce tokenizer train", line);
        }
    }

    [Fact]
    public void ZeroCodebookFailsBeforeAnyWork()
    {
        using var dir = new TempDir();
        var r = Train(dir["tok"], "--codebook", "0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("codebook size must be in [2, 1048576], got 0", r.Stderr);
        Assert.False(Directory.Exists(dir["tok"]));
    }

    [Fact]
    public void CodebookMismatchesFailClearly()
    {
        using var dir = new TempDir();
        Assert.Equal(0, Train(dir["tok"], "--steps", "1").ExitCode);
        // Resuming with another K.
        var resume = Train(dir["tok"], "--resume", "--steps", "2", "--codebook", "128");
        Assert.Equal(1, resume.ExitCode);
        Assert.Contains("--codebook 128 does not match the checkpoint being resumed (64)", resume.Stderr);
        // Training into an existing checkpoint without --resume.
        var again = Train(dir["tok"]);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("--resume", again.Stderr);
        // A config.json whose K disagrees with the weights.
        var config = Path.Combine(dir["tok"], TokenizerCheckpoint.ConfigFile);
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"codebook_size\": 64", "\"codebook_size\": 32"));
        var eval = CliRunner.Run("tokenizer", "eval", "--tokenizer", dir["tok"], "--device", "cpu");
        Assert.Equal(1, eval.ExitCode);
        Assert.Contains("codebook size K = 64 and code dimension D = 8 in the weights, K = 32 and D = 8 in the config", eval.Stderr);
    }

    [Fact]
    public void NeighborsKLargerThanTheCodebookFails()
    {
        using var dir = new TempDir();
        Assert.Equal(0, Train(dir["tok"], "--steps", "1").ExitCode);
        var r = CliRunner.Run("tokenize", "--tokenizer", dir["tok"], "--data", Data, "--out", dir["s"], "--neighbors-k", "65", "--device", "cpu");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--neighbors-k must be in [0, 64]", r.Stderr);
    }
}
