using System.Text.Json;
using Snce.Editing;
using Snce.Models;
using Snce.Evaluation;
using Snce.Sampling;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce eval --checkpoint PAIRED_RUN</c>: translates the held-out pairs of a paired run's shards and scores them against their
/// ground-truth targets (PSNR, SSIM, L1, target-token accuracy), next to "copy the source", "nearest training target" (by source
/// tokens) and the tokenizer's reconstruction of the target; with <c>--vendor-classifier DIR</c>, the vendor success rate of the translations
/// and of the baselines (the ground-truth targets' rate is the ceiling).
/// </summary>
static class TranslationEval
{
    public static int Run(string run, string? pairsSpec, Snce.Data.DataOptions dataOptions, int? n, GeneratorSamplingOptions options, bool ema, string? tokenizer,
        long seed, string? gridPath, Device device, bool json, string? vendorClassifierDir = null)
    {
        var manifest = GeneratorCheckpoint.ReadManifest(run);
        using var shards = Snce.Data.TokenShards.Load(manifest.Data.Tokens);
        RunSetup.CheckCompatible(manifest.Model, shards.Info, manifest.Data.Tokens, run);
        var spec = pairsSpec ?? shards.Info.Pairs!;
        using var editor = new CheckpointEditor(run, device, ema, tokenizer);
        var tc = editor.Tokenizer.Config;
        var vendorClassifier = vendorClassifierDir is null ? null : ClassifierCheckpoint.Load(vendorClassifierDir, device);
        using var vendorModel = vendorClassifier?.Model;
        ImagePairs pairs;
        using (var progress = new DataProgressBar()) pairs = PairedData.Load(spec, dataOptions, tc.Channels, tc.ImageSize, progress);
        using var loaded = pairs;
        using var g = new Generator((ulong)seed);
        using var held = shards.IndicesOf(Snce.Data.TokenShards.ValidationSplit);
        using var instructions = editor.TakesInstructions ? Snce.Text.CaptionShards.Load(manifest.Data.Tokens, shards.Info.Count) : null;
        TranslationEvaluationSet set;
        using (var bar = new ProgressBar("translating", Math.Min(n ?? held.shape[0], held.shape[0])))
            set = TranslationEvaluation.Run(editor, shards, pairs, n, options, g, new Progress(bar), instructions, vendorClassifier);
        using var result = set;
        if (gridPath is not null)
        {
            using var scope = NewDisposeScope();
            var shown = Math.Min(8, set.Scores.Pairs);
            Tensor Rgb(Tensor t) => t.shape[1] == 1 ? t.expand(-1, 3, -1, -1) : t;
            var cells = cat([Rgb(set.Sources.narrow(0, 0, shown)), Rgb(set.Targets.narrow(0, 0, shown)), Rgb(set.Generated.narrow(0, 0, shown))], 0);
            Snce.Data.ImageGrid.SavePng(gridPath, cells, shown);
        }
        var s = set.Scores;
        object Row(TranslationScores t) => new { psnr = Math.Round(t.Psnr, 3), ssim = Math.Round(t.Ssim, 4), l1 = Math.Round(t.L1, 5), token_accuracy = Math.Round(t.TokenAccuracy, 4) };
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                checkpoint = Path.GetFullPath(run), step = manifest.State.Step, generator = manifest.Model.Kind.Name(), conditioning = manifest.Model.Conditioning,
                pairs = spec, held_out_pairs = s.Pairs,
                seed, cfg = options.CfgScale, temperature = options.Tokens.Temperature,
                translation = new
                {
                    generated = Row(s.Generated), copy_source = Row(s.CopySource), nearest_training_target = Row(s.NearestTrainingTarget),
                    reconstruction = Row(s.Reconstruction),
                    nearest_by = "source tokens (Hamming distance between the source token grids; ties: the first training pair)"
                        + (editor.TakesInstructions ? ", among the training pairs of the same instruction" : ""),
                },
                vendor_success = s.Vendor is not { } v ? null : new
                {
                    target_vendor = v.TargetVendor, generated = Math.Round(v.Generated, 4), copy_source = Math.Round(v.CopySource, 4),
                    nearest_training_target = Math.Round(v.NearestTrainingTarget, 4), ground_truth_target = Math.Round(v.GroundTruth, 4),
                    classifier = Path.GetFullPath(vendorClassifierDir!), classifier_vendors = v.Classifier.Classes,
                    classifier_held_out_accuracy = Math.Round(v.Classifier.HeldOutAccuracy, 4),
                },
                grid = gridPath is null ? null : Path.GetFullPath(gridPath),
            }, Json.Options));
        else
        {
            Console.WriteLine($"{manifest.Model.Kind.Name()} run at step {manifest.State.Step}, {s.Pairs} held-out pairs of {spec} (seed {seed}):");
            Console.WriteLine($"  {"",-24} {"PSNR dB",8} {"SSIM",7} {"L1",8} {"token acc",9}");
            foreach (var (name, t) in new[] { ("generated", s.Generated), ("copy the source", s.CopySource), ("nearest training target", s.NearestTrainingTarget), ("tokenizer reconstruction", s.Reconstruction) })
                Console.WriteLine($"  {name,-24} {t.Psnr,8:F2} {t.Ssim,7:F4} {t.L1,8:F4} {t.TokenAccuracy,9:P1}");
            Console.WriteLine("  (nearest training target: the training pair whose source tokens agree with the held-out source's at the most positions)");
            if (s.Vendor is { } v)
            {
                Console.WriteLine($"  vendor success rate (share the vendor classifier [{string.Join(", ", v.Classifier.Classes)}] assigns to {v.TargetVendor}; " +
                    $"its held-out accuracy {v.Classifier.HeldOutAccuracy:P1}):");
                foreach (var (name, rate) in new[] { ("generated", v.Generated), ("copy the source", v.CopySource), ("nearest training target", v.NearestTrainingTarget), ("ground-truth target", v.GroundTruth) })
                    Console.WriteLine($"  {name,-24} {rate,8:P1}");
            }
        }
        return 0;
    }

    sealed class Progress(ProgressBar bar) : IProgress<int>
    {
        public void Report(int value) => bar.Report(value, "");
    }
}
