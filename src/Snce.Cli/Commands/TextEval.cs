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
/// </summary>
static class TextEval
{
    /// <summary>The accepted prompt sets.</summary>
    public const string Allowed = "held-out (both), held-out-phrasings, held-out-emoji";

    sealed record PromptSet(string Name, int[] Rows, string[] Prompts);

    public static int Run(string run, string evaluatorDir, string promptSet, ImageDataset real, int? n, GeneratorSamplingOptions options,
        bool ema, string? tokenizer, long seed, Device device, bool json)
    {
        var manifest = GeneratorCheckpoint.ReadManifest(run);
        var text = manifest.Model.Text
            ?? throw new SnceUserException($"--prompts needs a text-conditioned run, but '{run}' is class-conditional; score it without --prompts");
        var captions = CaptionSet.From(real);
        var split = real.Split.data<byte>().ToArray();
        var limit = n ?? 100;
        PromptSet Phrasings() => Take("held-out phrasings", Enumerable.Range(0, real.Count).Where(i => split[i] == ImageDataset.TrainSplit && captions.HeldOut[i].Length > 0), i => captions.HeldOut[i][0]);
        PromptSet Emoji() => Take("held-out images", Enumerable.Range(0, real.Count).Where(i => split[i] == ImageDataset.ValidationSplit), i => captions.Train[i][0]);
        PromptSet Take(string name, IEnumerable<int> rows, Func<int, string> prompt)
        {
            var r = rows.Take(limit).ToArray();
            return new PromptSet(name, r, [.. r.Select(prompt)]);
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
            if (!json)
                Console.WriteLine($"{set.Name} ({set.Rows.Length} prompts, {score.Candidates} candidates): R@1 {score.R1:P1} (real {ceiling.R1:P1}), " +
                    $"R@5 {score.R5:P1} (real {ceiling.R5:P1}), cosine {score.MeanCosine:F3} (real {ceiling.MeanCosine:F3}); FD-evaluator {fdEval:F3}, FD-ResNet18 {fdResNet:F2} (few images: biased high)");
        }
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                checkpoint = Path.GetFullPath(run), step = manifest.State.Step, evaluator = Path.GetFullPath(evaluatorDir), seed, cfg = options.CfgScale, cfg_schedule = options.CfgSchedule.Name(), results,
            }, Json.Options));
        return 0;
    }
}
