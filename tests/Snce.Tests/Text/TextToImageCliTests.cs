using System.Text.Json;
using Snce.Data;
using Snce.IO;
using Snce.Tests.Support;
using Snce.Text;
using static TorchSharp.torch;

namespace Snce.Tests.Text;

/// <summary>
/// Text-to-image end to end on the CPU: a captioned image folder → tokenize --text → train ar|mask --text → sample --prompt,
/// and the bad inputs users will hit.
/// </summary>
public sealed class TextToImageCliTests
{
    static readonly (string Caption, byte R, byte G, byte B)[] Colors =
        [("a red square", 220, 20, 20), ("a green square", 20, 200, 20), ("a blue square", 20, 20, 220), ("a yellow square", 240, 230, 30)];

    /// <summary>DIR/img_C_I.png (16×16 flat colors, 10 per color) and captions.jsonl (two phrasings per image).</summary>
    internal static void CaptionedFolder(string dir)
    {
        Directory.CreateDirectory(dir);
        var lines = new List<string>();
        for (var c = 0; c < Colors.Length; c++)
            for (var i = 0; i < 10; i++)
            {
                var name = $"img_{c}_{i}.png";
                var (caption, r, g, b) = Colors[c];
                using var img = stack([full(16, 16, r, dtype: ScalarType.Byte), full(16, 16, g, dtype: ScalarType.Byte), full(16, 16, b, dtype: ScalarType.Byte)]).unsqueeze(0);
                ImageGrid.SavePng(Path.Combine(dir, name), img, 1);
                lines.Add(JsonSerializer.Serialize(new { file = name, caption }));
                lines.Add(JsonSerializer.Serialize(new { file = name, caption = caption.Replace("a ", "one ") }));
            }
        File.WriteAllLines(Path.Combine(dir, CaptionFile.FileName), lines);
    }

    internal static void TokenizeInto(TempDir dir) => Tokenize(dir);

    internal static string[] TrainArgs(string kind, TempDir dir, string run, int steps) => Train(kind, dir, run, steps);

    static void Tokenize(TempDir dir)
    {
        CaptionedFolder(dir["images"]);
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused"]);
        var t = CliRunner.Run("tokenize", "--tokenizer", dir["tokenizer"], "--data", dir["images"], "--text", "--neighbors-k", "4", "--device", "cpu", "--out", dir["tokens"]);
        Assert.True(t.ExitCode == 0, t.Stderr);
        Assert.Contains("captions: 8 unique (captions.jsonl", t.Stdout);
    }

    static string[] Train(string kind, TempDir dir, string run, int steps) =>
        ["train", kind, "--tokens", dir["tokens"], "--text", "--preset", "tiny", "--steps", steps.ToString(), "--batch", "16", "--lr", "3e-3",
         "--warmup", "20", "--log-every", "25", "--validate-every", "0", "--val-batches", "1", "--ema", "0.9", "--device", "cpu", "--out", run];

    [Fact]
    public void A_tiny_caption_conditioned_model_trains_and_samples_the_prompted_images()
    {
        using var dir = new TempDir();
        Tokenize(dir);
        var train = CliRunner.Run(Train("ar", dir, dir["ar"], 300));
        Assert.True(train.ExitCode == 0, train.Stderr);
        Assert.Contains("text (all-minilm-l6-v2-", train.Stdout);
        var losses = File.ReadLines(Path.Combine(dir["ar"], "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("split").GetString() == "train").Select(e => e.GetProperty("loss").GetDouble()).ToArray();
        Assert.True(losses[^1] < 0.5 * Math.Log(16), $"training loss went {losses[0]:F3} → {losses[^1]:F3}; expected well below ln 16");

        // Greedy samples of a prompt reproduce the tokens of that caption's images (every image of a color has the same tokens).
        var s = CliRunner.Run("sample", "--checkpoint", dir["ar"], "--prompt", "a red square", "--prompt", "a blue square", "--n", "3",
            "--cfg", "1", "--temperature", "0", "--device", "cpu", "--out", dir["grid.png"]);
        Assert.True(s.ExitCode == 0, s.Stderr);
        Assert.True(new FileInfo(dir["grid.png"]).Length > 0);
        var cells = JsonDocument.Parse(File.ReadAllText(dir["grid.captions.json"])).RootElement.GetProperty("cells");
        Assert.Equal("a blue square", cells[3].GetProperty("caption").GetString());
        Assert.Equal(1, cells[3].GetProperty("row").GetInt32());
        using var sampled = Npy.Load(dir["grid.tokens.npy"]).to_type(ScalarType.Int64).view(6, 16);
        using var shardTokens = Npy.Load(Path.Combine(dir["tokens"], "tokens.npy")).to_type(ScalarType.Int64);
        var info = JsonSerializer.Deserialize<CaptionShardsInfo>(File.ReadAllText(Path.Combine(dir["tokens"], CaptionShards.InfoFile)))!;
        int RowOf(string caption) => Array.FindIndex(info.Train, ids => ids.Any(i => info.Captions[i] == caption));
        foreach (var (caption, first) in new[] { ("a red square", 0), ("a blue square", 3) })
        {
            using var expected = shardTokens[RowOf(caption)];
            var match = (sampled.narrow(0, first, 3) == expected.unsqueeze(0)).to_type(ScalarType.Float32).mean().item<float>();
            Assert.True(match > 0.8, $"only {match:P0} of the tokens sampled for '{caption}' are that caption's image tokens");
        }

        // Truncation warns; --class does not apply; an empty prompt is a clear error.
        var longPrompt = string.Join(" ", Enumerable.Repeat("red", 40));
        var w = CliRunner.Run("sample", "--checkpoint", dir["ar"], "--prompt", longPrompt, "--n", "1", "--device", "cpu", "--out", dir["long.npy"]);
        Assert.True(w.ExitCode == 0, w.Stderr);
        Assert.Contains("warning: the prompt", w.Stderr);
        Assert.Contains("reads only the first 32", w.Stderr);
        var empty = CliRunner.Run("sample", "--checkpoint", dir["ar"], "--prompt", " ", "--n", "1", "--device", "cpu", "--out", dir["e.npy"]);
        Assert.NotEqual(0, empty.ExitCode);
        Assert.Contains("snce: error: the prompt is empty", empty.Stderr);
        var none = CliRunner.Run("sample", "--checkpoint", dir["ar"], "--n", "1", "--device", "cpu", "--out", dir["n.npy"]);
        Assert.Contains("is text-conditioned; give one or more --prompt", none.Stderr);
    }

    [Fact]
    public void The_masked_generator_trains_on_captions_and_samples_a_prompt_grid()
    {
        using var dir = new TempDir();
        Tokenize(dir);
        var train = CliRunner.Run(Train("mask", dir, dir["mask"], 40));
        Assert.True(train.ExitCode == 0, train.Stderr);
        var manifest = File.ReadAllText(Path.Combine(dir["mask"], "checkpoint", "checkpoint.json"));
        Assert.Contains("\"conditioning\": \"text\"", manifest);
        var s = CliRunner.Run("sample", "--checkpoint", dir["mask"], "--prompt", "a green square", "--n", "4", "--steps", "3", "--cfg", "3",
            "--device", "cpu", "--out", dir["grid.png"]);
        Assert.True(s.ExitCode == 0, s.Stderr);
        Assert.True(new FileInfo(dir["grid.png"]).Length > 0);
        // Resuming a text run keeps its captions.
        var more = CliRunner.Run("train", "--resume", dir["mask"], "--device", "cpu");
        Assert.True(more.ExitCode == 0, more.Stderr);
    }

    [Fact]
    public void Prompt_on_a_class_conditional_checkpoint_is_a_clear_error()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        Assert.Equal(0, CliRunner.Run("train", "ar", "--tokens", dir["tokens"], "--preset", "tiny", "--steps", "2", "--batch", "8", "--device", "cpu", "--out", dir["run"]).ExitCode);
        var r = CliRunner.Run("sample", "--checkpoint", dir["run"], "--prompt", "a red apple", "--n", "1", "--device", "cpu", "--out", dir["s.npy"]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("snce: error: --prompt needs a text-conditioned generator", r.Stderr);
        // --text on shards without captions names the fix.
        var t = CliRunner.Run("train", "ar", "--tokens", dir["tokens"], "--text", "--preset", "tiny", "--steps", "2", "--device", "cpu", "--out", dir["run2"]);
        Assert.NotEqual(0, t.ExitCode);
        Assert.Contains("snce tokenize --text", t.Stderr);
    }

    [Fact]
    public void Damaged_caption_files_are_one_clear_error_naming_the_file()
    {
        using var dir = new TempDir();
        Tokenize(dir);
        void Fails(CliRunner.Result r, string expected)
        {
            Assert.Equal(1, r.ExitCode);
            Assert.StartsWith("snce: error: ", r.Stderr);
            Assert.Contains(expected, r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);                         // no stack trace
        }
        // captions.json cut short, then caption lengths past the stored word pieces: 'train --text' refuses the shards.
        var info = Path.Combine(dir["tokens"], CaptionShards.InfoFile);
        var good = File.ReadAllText(info);
        File.WriteAllText(info, good[..(good.Length / 2)]);
        Fails(CliRunner.Run(Train("ar", dir, dir["run"], 2)), "captions.json: not a valid caption description");
        File.WriteAllText(info, good);
        var lengthsFile = Path.Combine(dir["tokens"], "text_lengths.npy");
        using (var lengths = Npy.Load(lengthsFile))
        using (var tokens = Npy.Load(Path.Combine(dir["tokens"], "text_tokens.npy")))
        using (var bad = lengths.clone().fill_(tokens.shape[1] + 5))
            Npy.Save(lengthsFile, bad);
        Fails(CliRunner.Run(Train("ar", dir, dir["run"], 2)), "caption lengths must be in 1..");
        Assert.False(File.Exists(Path.Combine(dir["run"], "checkpoint", "checkpoint.json")));

        // A captions.jsonl line naming an image outside its folder: 'tokenize --text' names the line.
        File.AppendAllText(Path.Combine(dir["images"], CaptionFile.FileName), "{\"file\": \"../tokens/text_lengths.npy\", \"caption\": \"x\"}\n");
        Fails(CliRunner.Run("tokenize", "--tokenizer", dir["tokenizer"], "--data", dir["images"], "--text", "--neighbors-k", "4", "--device", "cpu", "--out", dir["tokens2"]),
            "line 81: '../tokens/text_lengths.npy' points outside");
    }

    [Fact]
    public void Tokenize_text_of_a_data_set_without_captions_names_what_works()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused"]);
        var r = CliRunner.Run("tokenize", "--tokenizer", dir["tokenizer"], "--data", MnistSample.Dir, "--text", "--neighbors-k", "4", "--device", "cpu", "--out", dir["tokens"]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("has no captions", r.Stderr);
        Assert.Contains("captions.jsonl", r.Stderr);
    }
}

/// <summary>The text-alignment evaluator: retrieval scores by closed form, and train → eval --prompts end to end.</summary>
public sealed class TextEvaluatorTests
{
    [Fact]
    public void Retrieval_scores_follow_their_definition()
    {
        using var scope = NewDisposeScope();
        var e = eye(6);
        string[] keys = ["a", "b", "c", "d", "e", "f"];
        var perfect = Snce.Evaluation.TextEvaluator.Score(e, e, keys);
        Assert.Equal((1.0, 1.0, 6), (perfect.R1, perfect.R5, perfect.Candidates));
        Assert.Equal(1.0, perfect.MeanCosine, 6);
        // Image i looks like caption i+1: every true caption is beaten by exactly one other → R@1 0, R@5 1, cosine 0.
        var shifted = Snce.Evaluation.TextEvaluator.Score(e.roll(1, 1), e, keys);
        Assert.Equal((0.0, 1.0), (shifted.R1, shifted.R5));
        Assert.Equal(0.0, shifted.MeanCosine, 6);
        // A better-scoring candidate with the same caption text is not a miss.
        var same = Snce.Evaluation.TextEvaluator.Score(e.roll(1, 1), e, ["a", "a", "a", "a", "a", "a"]);
        Assert.Equal(1.0, same.R1);
    }

    /// <summary>A tiny masked text run in dir["run"] and a text-alignment evaluator in dir["evaluator"]; returns the evaluator's CLI result.</summary>
    static CliRunner.Result TrainRunAndEvaluator(TempDir dir, int evaluatorSteps)
    {
        TextToImageCliTests.TokenizeInto(dir);
        Assert.Equal(0, CliRunner.Run(TextToImageCliTests.TrainArgs("mask", dir, dir["run"], 10)).ExitCode);
        var ev = CliRunner.Run("evaluator", "train", "--data", dir["images"], "--channels", "1", "--size", "16", "--steps", $"{evaluatorSteps}", "--batch", "16",
            "--width", "8", "--device", "cpu", "--out", dir["evaluator"]);
        Assert.True(ev.ExitCode == 0, ev.Stderr);
        return ev;
    }

    [Fact]
    public void The_evaluator_trains_and_eval_prompts_scores_a_text_run_against_the_real_ceiling()
    {
        using var dir = new TempDir();
        var ev = TrainRunAndEvaluator(dir, evaluatorSteps: 30);
        Assert.Contains("real held-out images: R@1", ev.Stdout);
        var r = CliRunner.Run("eval", "--checkpoint", dir["run"], "--prompts", "held-out", "--evaluator", dir["evaluator"], "--data", dir["images"],
            "--channels", "1", "--size", "16", "--sampling-steps", "2", "--device", "cpu", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var results = System.Text.Json.JsonDocument.Parse(r.Stdout).RootElement.GetProperty("results");
        var images = results.EnumerateArray().Single(x => x.GetProperty("prompts").GetString() == "held-out images");
        var ceiling = images.GetProperty("real_ceiling");
        Assert.InRange(ceiling.GetProperty("r1").GetDouble(), 0, 1);
        Assert.True(ceiling.GetProperty("r5").GetDouble() >= ceiling.GetProperty("r1").GetDouble());
        Assert.True(images.GetProperty("fd_evaluator").GetDouble() >= 0);
        var bad = CliRunner.Run("eval", "--checkpoint", dir["run"], "--prompts", "held-out", "--data", dir["images"], "--device", "cpu");
        Assert.Contains("--prompts needs --evaluator", bad.Stderr);
        var best = CliRunner.Run("eval", "--checkpoint", dir["run"], "--prompts", "held-out", "--evaluator", dir["evaluator"], "--data", dir["images"],
            "--channels", "1", "--size", "16", "--keep-best", "fd", "--device", "cpu");
        Assert.Contains("--keep-best", best.Stderr);
        Assert.Contains("does not take --prompts", best.Stderr);
        var plain = CliRunner.Run("eval", "--checkpoint", dir["run"], "--data", dir["images"], "--device", "cpu");
        Assert.Contains("is a text-to-image run; score it with --prompts", plain.Stderr);
    }

    /// <summary>
    /// What tools/device_t2i.sh does per run: eval --prompts with --log-to, then 'snce report' over the run folders. The logged
    /// record carries the same scores as the JSON (per set and, as text_* and fd, the first set's), and the report's text
    /// alignment table shows them at the checkpoint's step.
    /// </summary>
    [Fact]
    public void Eval_prompts_log_to_writes_the_scores_into_the_run_and_the_report_shows_them()
    {
        using var dir = new TempDir();
        var ev = TrainRunAndEvaluator(dir, evaluatorSteps: 20);
        var r = CliRunner.Run("eval", "--checkpoint", dir["run"], "--prompts", "held-out", "--evaluator", dir["evaluator"], "--data", dir["images"],
            "--channels", "1", "--size", "16", "--sampling-steps", "2", "--log-to", dir["run"], "--device", "cpu", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var results = System.Text.Json.JsonDocument.Parse(r.Stdout).RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.NotEmpty(results);                                    // sets of fewer than 2 prompts are skipped; the first set is in text_* and fd
        var record = System.Text.Json.JsonDocument.Parse(File.ReadLines(Path.Combine(dir["run"], "metrics.jsonl")).Last()).RootElement;
        Assert.Equal("eval", record.GetProperty("split").GetString());
        Assert.Equal(10, record.GetProperty("step").GetInt64());
        double Json(System.Text.Json.JsonElement e, string a, string b) => e.GetProperty(a).GetProperty(b).GetDouble();
        foreach (var set in results)
        {
            var key = set.GetProperty("prompts").GetString() == "held-out phrasings" ? "phrasings" : "emoji";
            Assert.Equal(Json(set, "generated", "r1"), record.GetProperty($"{key}_r1").GetDouble(), 6);
            Assert.Equal(Json(set, "generated", "r5"), record.GetProperty($"{key}_r5").GetDouble(), 6);
            Assert.Equal(Json(set, "real_ceiling", "r1"), record.GetProperty($"{key}_r1_real").GetDouble(), 6);
            // metrics.jsonl rounds FD; compare within that rounding, not by rounding both (964.98275 vs 964.98274985 rounds apart)
            Assert.Equal(set.GetProperty("fd_resnet18").GetDouble(), record.GetProperty($"{key}_fd_resnet18").GetDouble(), 1e-4);
            Assert.Equal(set.GetProperty("count").GetInt32(), record.GetProperty($"{key}_n").GetInt32());
        }
        Assert.Equal(Json(results[0], "generated", "r1"), record.GetProperty("text_r1").GetDouble(), 6);
        Assert.Equal(results[0].GetProperty("fd_resnet18").GetDouble(), record.GetProperty("fd").GetDouble(), 1e-4);

        var report = CliRunner.Run("report", dir["run"], "--out", dir["report"]);
        Assert.True(report.ExitCode == 0, report.Stderr);
        var md = File.ReadAllText(Path.Combine(dir["report"], "report.md"));
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        var row = $"| {Path.GetFileName(dir["run"])} | 10 | {Json(results[0], "generated", "r1").ToString("P1", ci)} | {Json(results[0], "generated", "r5").ToString("P1", ci)} | " +
                  $"{Json(results[0], "generated", "mean_cosine").ToString("F3", ci)} | {Json(results[0], "real_ceiling", "r1").ToString("P1", ci)} | " +
                  $"{results[0].GetProperty("fd_resnet18").GetDouble().ToString("F2", ci)} |";
        Assert.Contains("## Text alignment", md);
        Assert.Contains(row, md);
    }
}
