using System.Text.Json;
using Snce.Data;
using Snce.Evaluation;
using Snce.Sampling;
using Snce.Text;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce eval --checkpoint RUN --prompts held-out --evaluator EVAL</c>: samples one image per held-out prompt from a
/// text-conditioned run and scores the images with the text-alignment evaluator (R@1, R@5 among 100, mean cosine), FD in
/// the evaluator's image features and FD-ResNet18 against the real images of the same prompts, next to the real-image ceiling.
/// With <c>--log-to RUN</c> the scores are also appended to RUN/metrics.jsonl as one <c>"eval"</c> record at the checkpoint's
/// step (<see cref="LogRecord"/>), which <c>snce report</c> reads.
/// </summary>
static class TextEval
{
    /// <summary>The accepted prompt sets.</summary>
    public const string Allowed = "held-out (both), held-out-phrasings, held-out-emoji";

    sealed record PromptSet(string Name, string Key, int[] Rows, string[] Prompts);

    /// <summary>The scores of one prompt set.</summary>
    public sealed record SetResult(string Name, string Key, int Count, AlignmentScore Generated, AlignmentScore Ceiling, double FdEvaluator, double FdResNet18);

    /// <summary>
    /// The metrics.jsonl values of an evaluation: per set KEY (phrasings, emoji) KEY_r1, KEY_r5, KEY_cosine, KEY_r1_real,
    /// KEY_fd_resnet18, KEY_fd_evaluator, KEY_n; and those of the first set again as text_r1, text_r5, text_cosine,
    /// text_r1_real, and fd (FD-ResNet18) with n, so that the report's FD and R@1 columns read one set (held-out phrasings
    /// for --prompts held-out).
    /// </summary>
    public static Dictionary<string, double> LogRecord(IReadOnlyList<SetResult> sets)
    {
        var values = new Dictionary<string, double>();
        foreach (var s in sets)
        {
            values[$"{s.Key}_r1"] = s.Generated.R1;
            values[$"{s.Key}_r5"] = s.Generated.R5;
            values[$"{s.Key}_cosine"] = s.Generated.MeanCosine;
            values[$"{s.Key}_r1_real"] = s.Ceiling.R1;
            values[$"{s.Key}_fd_resnet18"] = s.FdResNet18;
            values[$"{s.Key}_fd_evaluator"] = s.FdEvaluator;
            values[$"{s.Key}_n"] = s.Count;
        }
        if (sets.Count > 0)
        {
            var first = sets[0];
            values["text_r1"] = first.Generated.R1;
            values["text_r5"] = first.Generated.R5;
            values["text_cosine"] = first.Generated.MeanCosine;
            values["text_r1_real"] = first.Ceiling.R1;
            values["fd"] = first.FdResNet18;
            values["n"] = first.Count;
        }
        return values;
    }

    public static int Run(string run, string evaluatorDir, string promptSet, ImageDataset real, int? n, GeneratorSamplingOptions options,
        bool ema, string? tokenizer, long seed, Device device, bool json, string? logTo = null)
    {
        var manifest = GeneratorCheckpoint.ReadManifest(run);
        var text = manifest.Model.Text
            ?? throw new SnceUserException($"--prompts needs a text-conditioned run, but '{run}' is class-conditional; score it without --prompts");
        var captions = CaptionSet.From(real);
        var split = real.Split.data<byte>().ToArray();
        var limit = n ?? 100;
        PromptSet Phrasings() => Take("held-out phrasings", "phrasings", Enumerable.Range(0, real.Count).Where(i => split[i] == ImageDataset.TrainSplit && captions.HeldOut[i].Length > 0), i => captions.HeldOut[i][0]);
        PromptSet Emoji() => Take("held-out images", "emoji", Enumerable.Range(0, real.Count).Where(i => split[i] == ImageDataset.ValidationSplit), i => captions.Train[i][0]);
        PromptSet Take(string name, string key, IEnumerable<int> rows, Func<int, string> prompt)
        {
            var r = rows.Take(limit).ToArray();
            return new PromptSet(name, key, r, [.. r.Select(prompt)]);
        }
        PromptSet[] sets = promptSet.ToLowerInvariant() switch
        {
            "held-out" => [Phrasings(), Emoji()],
            "held-out-phrasings" => [Phrasings()],
            "held-out-emoji" or "held-out-images" => [Emoji()],
            var other => throw new SnceUserException($"unknown --prompts '{other}'; use {Allowed}"),
        };
        using var evaluator = TextEvaluator.Load(evaluatorDir, device);
        using var cache = new TextEmbeddingCache();
        var (model, _) = GeneratorCheckpoint.LoadModel(run, device, ema);
        using var _model = model;
        using var decoder = new TokenizerDecoder(tokenizer ?? manifest.Data.Tokenizer, device);
        var tower = evaluator.Info.Tower;
        if (real.Channels != tower.Channels || real.Size != tower.ImageSize)
            throw new SnceUserException($"the evaluator takes {tower.ImageSize}×{tower.ImageSize} images with {tower.Channels} channel(s), but --data gives {real.Size}×{real.Size} with {real.Channels}; pass --size {tower.ImageSize} --channels {tower.Channels}");
        using var resnet = new ResNet18Features();
        var results = new List<object>();
        var scored = new List<SetResult>();
        foreach (var set in sets.Where(s => s.Rows.Length >= 2))
        {
            using var scope = NewDisposeScope();
            var embedded = cache.Get(set.Prompts);
            using var g = new Generator((ulong)seed);
            var conditions = TextConditions.Of(embedded, text.MaxTokens, CPU);
            var ids = GeneratorSampler.Sample(model, conditions, options, g);
            var images = decoder.Decode(ids.view(-1, manifest.Model.GridHeight, manifest.Model.GridWidth)).cpu();
            if (images.shape[1] != real.Channels || images.shape[2] != real.Size)
                throw new SnceUserException($"the generator makes {images.shape[2]}×{images.shape[3]} images with {images.shape[1]} channel(s), the evaluator and --data {real.Size}×{real.Size} with {real.Channels}");
            var realImages = real.Images.index_select(0, tensor(set.Rows.Select(r => (long)r).ToArray()));
            var genEmb = evaluator.Embed(images);
            var realEmb = evaluator.Embed(realImages);
            var score = TextEvaluator.ScoreImages(genEmb, set.Prompts, cache);
            var ceiling = TextEvaluator.ScoreImages(realEmb, set.Prompts, cache);
            var fdEval = FrechetDistance.Compute(genEmb.to_type(ScalarType.Float64), realEmb.to_type(ScalarType.Float64));
            var fdResNet = FrechetDistance.Compute(resnet.Extract(images), resnet.Extract(realImages));
            results.Add(new { prompts = set.Name, count = set.Rows.Length, generated = score, real_ceiling = ceiling, fd_evaluator = fdEval, fd_resnet18 = fdResNet });
            scored.Add(new SetResult(set.Name, set.Key, set.Rows.Length, score, ceiling, fdEval, fdResNet));
            if (!json)
                Console.WriteLine($"{set.Name} ({set.Rows.Length} prompts, {score.Candidates} candidates): R@1 {score.R1:P1} (real {ceiling.R1:P1}), " +
                    $"R@5 {score.R5:P1} (real {ceiling.R5:P1}), cosine {score.MeanCosine:F3} (real {ceiling.MeanCosine:F3}); FD-evaluator {fdEval:F3}, FD-ResNet18 {fdResNet:F2} (few images: biased high)");
        }
        if (logTo is not null)
        {
            if (!Directory.Exists(logTo)) throw new DirectoryNotFoundException($"no run folder {logTo} for --log-to");
            new MetricsLog(new RunFolder(logTo), tensorBoard: false).Write(manifest.State.Step, "eval", LogRecord(scored));
        }
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                checkpoint = Path.GetFullPath(run), step = manifest.State.Step, evaluator = Path.GetFullPath(evaluatorDir), seed, cfg = options.CfgScale, cfg_schedule = options.CfgSchedule.Name(), results,
            }, Json.Options));
        return 0;
    }
}
