using System.CommandLine;
using System.Text.Json;
using Snce.Editing;
using Snce.Evaluation;
using Snce.Sampling;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce eval</c>: FD-ResNet18, precision/recall, class accuracy (and, for a generator run, its logged validation CE)
/// of generated images against the real validation split of a data set.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var data = new DataOptionsCli();
        data.Data.Description = "The real data set whose validation split is the reference: " + data.Data.Description;
        var images = new Option<string>("--images")
        {
            Description = "Generated images: a uint8 .npy [N, C, H, W], or a folder of PNG/JPEG files (flat, or one subfolder per class named by class name or index).",
            HelpName = "NPY|DIR",
        };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Generator run folder from 'snce train': sample --n images class-balanced, decode them with its tokenizer, evaluate them.", HelpName = "RUN" };
        var cfg = new Option<double>("--cfg") { Description = "With --checkpoint: classifier-free guidance scale (1 = none; same default as 'snce sample').", DefaultValueFactory = _ => 2.0, HelpName = "S" };
        var cfgSchedule = CfgScheduleOption.Create("With --checkpoint: ");
        var samplingSteps = new Option<int>("--sampling-steps") { Description = "With --checkpoint, masked generators: parallel decoding steps.", DefaultValueFactory = _ => 8, HelpName = "N" };
        var temperature = new Option<double>("--temperature") { Description = "With --checkpoint: sampling temperature.", DefaultValueFactory = _ => 1.0, HelpName = "T" };
        var seed = new Option<long>("--seed") { Description = "With --checkpoint: sampling seed (same seed, same images).", DefaultValueFactory = _ => 0, HelpName = "S" };
        var sampleBatch = new Option<int?>("--sample-batch") { Description = "With --checkpoint: images per sampling batch (default 256 on CUDA, where 64 left the GPU waiting on launches; 64 on the CPU).", HelpName = "B" };
        var weights = new Option<string>("--weights") { Description = "With --checkpoint: ema (default) or raw training weights.", DefaultValueFactory = _ => "ema", HelpName = "ema|raw" };
        weights.AcceptOnlyFromAmong("ema", "raw");
        var tokenizer = new Option<string?>("--tokenizer") { Description = "With --checkpoint: tokenizer folder (default: the one the run names).", HelpName = "DIR" };
        var labels = new Option<string?>("--labels") { Description = "Integer .npy [N] with each image's conditioning class (for class accuracy).", HelpName = "NPY" };
        var classifier = new Option<string?>("--classifier") { Description = "Classifier checkpoint from 'snce classifier train' (class accuracy needs it and labels).", HelpName = "DIR" };
        var n = new Option<int?>("--n") { Description = "Images: evaluate the first N (default: all). Checkpoint: sample N (default 10000). Compare FD-ResNet18 values only at equal N.", HelpName = "N" };
        var k = new Option<int>("--k") { Description = "Neighbourhood size of precision and recall.", DefaultValueFactory = _ => PrecisionRecall.DefaultK };
        var batch = new Option<int>("--feature-batch") { Description = "Images per ResNet-18 call.", DefaultValueFactory = _ => 32 };
        var backend = new Option<string>("--features")
        {
            Description = "How ResNet-18 runs: onnx (ONNX Runtime, CPU), torch (TorchSharp on --device, same weights), or auto (torch on CUDA, else onnx).",
            DefaultValueFactory = _ => "auto", HelpName = "auto|onnx|torch",
        };
        backend.AcceptOnlyFromAmong("auto", "onnx", "torch");
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime CPU threads (0: one per physical core).", DefaultValueFactory = _ => 0 };
        var cacheDir = new Option<string?>("--cache-dir") { Description = $"Where real-image statistics are cached (default: {RealFeatureCache.DefaultDir}).", HelpName = "DIR" };
        var logTo = new Option<string?>("--log-to") { Description = "Also append the result as a record {step, split: \"eval\", fd, ...} to RUN/metrics.jsonl, at the checkpoint's step or, for --images, at --step; with --prompts: R@1, R@5, cosine and FD per prompt set (what 'snce report' shows as text alignment).", HelpName = "RUN" };
        var step = new Option<long?>("--step") { Description = "With --images and --log-to: the training step the images come from.", HelpName = "STEP" };
        var keepBest = new Option<string?>("--keep-best") { Description = $"With --checkpoint RUN: copy the run's checkpoint to RUN/best when this evaluation is its best so far by the rule ({EnumNames<BestRule>.Allowed}; val-ce: the trainer's validation CE logged at the checkpoint's step).", HelpName = "val-ce|fd" };
        var skipMemo = new Option<bool>("--skip-memorization") { Description = "Skip the memorization metrics (FD against the training split, nearest-training-neighbour ratio, copied token sequences), which featurize the training split once (cached)." };
        var trainTokens = new Option<string?>("--train-tokens") { Description = "With --checkpoint: the token shards the generator was trained on, for the copied-sequence fraction (default: the run's own).", HelpName = "DIR" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var prompts = new Option<string?>("--prompts") { Description = $"With --checkpoint of a text-to-image run: sample the data's held-out prompts ({TextEval.Allowed}; --n per set, default 100) and score text alignment with --evaluator.", HelpName = "SET" };
        var evaluator = new Option<string?>("--evaluator") { Description = "With --prompts: the text-alignment evaluator from 'snce evaluator train'.", HelpName = "DIR" };
        var inpaint = new Option<string?>("--inpaint")
        {
            Description = "With --checkpoint: score inpainting instead of sampling. --n validation images spread evenly over the split (default: all, at most 10000) are edited in this region, " +
                $"each conditioned on its own class ({EditRegionCli.Allowed}; left..bottom outpaint that half): PSNR/L1 in the region (next to the tokenizer's own " +
                "reconstruction), tokens changed outside it (0), FD-ResNet18 of the edited images, and class accuracy as classifier consistency.",
            HelpName = "REGION",
        };
        var grid = new Option<string?>("--grid") { Description = "With --inpaint: a PNG of the first 8 sources, the regenerated region tinted, and their edits (3 rows). With a paired run: the first 8 of the scored held-out sources, their targets and the translations (3 rows).", HelpName = "FILE" };
        var pairs = new Option<string?>("--pairs")
        {
            Description = "With --checkpoint of a paired run (trained on 'snce tokenize --pairs' shards; then --data is not needed): where the pairs' images are, " +
                $"default the ones its shards were made from ({PairedData.Syntax}). A paired run is scored on its held-out pairs (--n: N spread evenly over them): PSNR, SSIM, L1 " +
                "against the ground-truth target and target-token accuracy, next to 'copy the source', 'nearest training target' (by source tokens) and the tokenizer's reconstruction.",
            HelpName = "SRC:DST|DIR",
        };
        var vendorClassifier = new Option<string?>("--vendor-classifier")
        {
            Description = "With --checkpoint of a paired emoji run: a vendor classifier from 'snce classifier train --data emoji --label vendor' (same size and channels as the " +
                "run's tokenizer, knowing the target vendor); adds the vendor success rate (share of images it assigns to the target vendor) of the translations, " +
                "the copied sources, the nearest training targets and the ground-truth targets (the ceiling).",
            HelpName = "DIR",
        };
        data.Data.Required = false;                                                      // not for a paired run; checked below
        data.Data.Description = "Required, except for a paired run. " + data.Data.Description;
        var cmd = new Command("eval", "Score a generator run (--checkpoint) or a set of images (--images) against a data set's real validation split: FD-ResNet18, precision, recall, class accuracy, validation CE. " +
            "A paired (image-to-image) run is scored on its held-out pairs instead (translation metrics; see --pairs).");
        foreach (var o in new Option[] { images, labels, checkpoint, inpaint, grid, pairs, vendorClassifier, cfg, cfgSchedule, samplingSteps, temperature, seed, sampleBatch, weights, tokenizer }) cmd.Options.Add(o);
        data.AddTo(cmd);
        foreach (var o in new Option[] { classifier, n, k, backend, batch, threads, cacheDir, logTo, step, keepBest, skipMemo, trainTokens, json, prompts, evaluator }) cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            Snce.Sampling.Guidance.CheckScale(parse.GetValue(cfg));
            int SampleBatch() => parse.GetValue(sampleBatch) is { } b
                ? (b >= 1 ? b : throw new SnceUserException($"--sample-batch must be at least 1; got {b}"))
                : device.Resolve(parse).type == TorchSharp.DeviceType.CUDA ? 256 : 64;
            // The sampling options of a --checkpoint run (its masking schedule is the one it was trained with).
            GeneratorSamplingOptions SamplingOptions(string run)
            {
                var options = new GeneratorSamplingOptions(new TokenSamplingOptions(parse.GetValue(temperature)), parse.GetValue(cfg), parse.GetValue(samplingSteps),
                    Schedule: GeneratorCheckpoint.ReadManifest(run).Training.Objective.Schedule, BatchSize: SampleBatch(),
                    CfgSchedule: CfgScheduleOption.Parse(parse, cfgSchedule));
                options.Tokens.Validate();
                return options;
            }
            var imagesPath = parse.GetValue(images);
            var run = parse.GetValue(checkpoint);
            if ((imagesPath is null) == (run is null)) throw new SnceUserException("give exactly one of --images (files) or --checkpoint (a generator run to sample)");
            var paired = run is not null && IsPaired(run);
            if (paired)
            {
                foreach (var o in new Option[] { inpaint, prompts, evaluator, classifier, logTo, keepBest, data.Data })
                    if (parse.GetResult(o) is { Implicit: false }) throw new SnceUserException($"{run} is a paired (image-to-image) run, scored on its held-out pairs; {o.Name} does not apply to it");
                var pairedOptions = SamplingOptions(run!);
                return TranslationEval.Run(run!, parse.GetValue(pairs), data.ToOptions(parse), parse.GetValue(n), pairedOptions, parse.GetValue(weights) == "ema",
                    parse.GetValue(tokenizer), parse.GetValue(seed), parse.GetValue(grid), device.Resolve(parse), parse.GetValue(json), parse.GetValue(vendorClassifier));
            }
            if (parse.GetValue(pairs) is not null) throw new SnceUserException("--pairs belongs to --checkpoint of a paired run (trained on 'snce tokenize --pairs' shards)");
            if (parse.GetValue(vendorClassifier) is not null)
                throw new SnceUserException("--vendor-classifier belongs to --checkpoint of a paired emoji run (trained on 'snce tokenize --pairs emoji-twitter:emoji-google' shards)");
            if (parse.GetValue(data.Data) is null) throw new SnceUserException("--data NAME|DIR is required: the real images to compare with");
            if (parse.GetValue(grid) is not null && parse.GetValue(inpaint) is null) throw new SnceUserException("--grid belongs to --inpaint");
            if (run is null && parse.GetValue(inpaint) is not null) throw new SnceUserException("--inpaint needs --checkpoint (the generator that edits the images)");
            if (parse.GetValue(inpaint) is not null && parse.GetValue(logTo) is not null)
                throw new SnceUserException("--log-to records sampling metrics into the run's log; it does not take --inpaint (use --json and keep the output)");
            if (run is not null && parse.GetValue(labels) is not null) throw new SnceUserException("--labels belongs to --images; a checkpoint's samples carry their classes");
            if (parse.GetValue(logTo) is not null && parse.GetValue(step) is null && run is null)
                throw new SnceUserException("--log-to needs --step (the training step the images come from)");
            var bestRule = parse.GetValue(keepBest) is { } ruleName ? EnumNames<BestRule>.Parse(ruleName) : (BestRule?)null;
            if (bestRule is not null && run is null) throw new SnceUserException("--keep-best needs --checkpoint RUN (it copies the run's checkpoint)");
            // --log-to and --keep-best write into a run folder: one writer at a time (a training run there would mix its log with ours), checked before any work.
            var written = new[] { parse.GetValue(logTo), bestRule is null ? null : run }.OfType<string>().Select(Path.GetFullPath).Distinct().ToList();
            using var held = FolderLocks.TakeAll(written, "snce eval");
            var dev = device.Resolve(parse);
            using var real = data.Load(parse);
            if (run is not null && parse.GetValue(prompts) is null && GeneratorCheckpoint.ReadManifest(run).Model.Text is not null)
                throw new SnceUserException($"'{run}' is a text-to-image run; score it with --prompts held-out --evaluator DIR");
            if (parse.GetValue(prompts) is { } promptSet)
            {
                if (run is null) throw new SnceUserException("--prompts needs --checkpoint (a text-to-image run to sample)");
                var evaluatorDir = parse.GetValue(evaluator) ?? throw new SnceUserException("--prompts needs --evaluator DIR (train one with 'snce evaluator train --data emoji --out DIR')");
                if (bestRule is not null) throw new SnceUserException("--keep-best ranks a run's FD or validation CE evaluations; it does not take --prompts (log the scores with --log-to RUN)");
                var textOptions = SamplingOptions(run);
                return TextEval.Run(run, evaluatorDir, promptSet, real, parse.GetValue(n), textOptions, parse.GetValue(weights) == "ema", parse.GetValue(tokenizer),
                    parse.GetValue(seed), dev, parse.GetValue(json), parse.GetValue(logTo));
            }
            var clf = parse.GetValue(classifier) is { } dir ? ClassifierCheckpoint.Load(dir, dev) : null;
            if (clf is not null && clf.Info.Label != ClassifierLabel.Class)
                throw new SnceUserException($"{parse.GetValue(classifier)} is a vendor classifier [{string.Join(", ", clf.Info.Classes)}]; it scores paired runs with --vendor-classifier, not class accuracy");
            if (clf is not null && !clf.Info.Classes.SequenceEqual(real.Classes))
                throw new SnceUserException($"the classifier was trained on {clf.Info.DataSet} with classes [{string.Join(", ", clf.Info.Classes)}], not the classes of {real.Name}");

            Tensor generated;
            Tensor? conditioning;
            Tensor? generatedTokens = null;
            TrainingSequences? trainSequences = null;
            var memorize = !parse.GetValue(skipMemo);
            var provenance = new Dictionary<string, object?> { ["images"] = null, ["checkpoint"] = null, ["step"] = null, ["seed"] = null, ["cfg"] = null, ["cfg_schedule"] = null, ["val_ce"] = null, ["val_ce_step"] = null };
            var started = DateTime.UtcNow;
            // Wall time per phase (JSON "phase_seconds"): where an evaluation's time goes, on the device too.
            var phases = new Dictionary<string, double>();
            var lap = System.Diagnostics.Stopwatch.StartNew();
            void Lap(string phase) { phases[phase] = Math.Round(lap.Elapsed.TotalSeconds, 2); lap.Restart(); }
            InpaintingScores? inpainting = null;
            if (run is not null && parse.GetValue(inpaint) is { } spec)
            {
                var options = SamplingOptions(run);
                using var editor = new CheckpointEditor(run, dev, parse.GetValue(weights) == "ema", parse.GetValue(tokenizer));
                var region = EditRegionCli.ParseNamed(spec, editor.Tokenizer.Config.ImageSize);
                using var validation = real.IndicesOf(Snce.Data.ImageDataset.ValidationSplit);
                var count = parse.GetValue(n) ?? (int)Math.Min(10_000, validation.shape[0]);
                if (count < 2) throw new SnceUserException($"--n must be at least 2 (a covariance needs two images); got {count}");
                using var g = new Generator((ulong)parse.GetValue(seed));
                InpaintingEvaluationSet set;
                using (var bar = new ProgressBar("inpainting", count))
                    set = InpaintingEvaluation.Run(editor, real, region, count, options, g, new CountProgress(bar));
                (generated, conditioning, inpainting) = (set.Edited, set.Labels, set.Scores);
                if (parse.GetValue(grid) is { } gridPath)
                {
                    using var rows = InpaintingEvaluation.Rows(real, count);
                    using var rowsShown = rows.narrow(0, 0, Math.Min(8, count));
                    using var sources = real.Images.index_select(0, rowsShown);
                    using var edits = set.Edited.narrow(0, 0, rowsShown.shape[0]);
                    using var cells = EditImages.Comparison(sources, editor.Footprint.ToPixels(set.Tokens), edits);
                    Snce.Data.ImageGrid.SavePng(gridPath, cells, (int)rowsShown.shape[0]);
                }
                provenance["checkpoint"] = Path.GetFullPath(run);
                provenance["step"] = editor.Manifest.State.Step;
                provenance["seed"] = parse.GetValue(seed);
                provenance["cfg"] = options.CfgScale;
                provenance["cfg_schedule"] = options.CfgSchedule.Name();
                provenance["inpaint_region"] = EditRegionCli.Describe(region);
            }
            else if (run is not null)
            {
                var count = parse.GetValue(n) ?? 10_000;
                if (count < 2) throw new SnceUserException($"--n must be at least 2 (a covariance needs two images); got {count}");
                var options = SamplingOptions(run);
                using var source = new CheckpointImageSource(run, dev, options, parse.GetValue(weights) == "ema", parse.GetValue(tokenizer));
                using var g = new Generator((ulong)parse.GetValue(seed));
                Lap("load_checkpoint");
                using (var bar = new ProgressBar("sampling", count))
                    (generated, conditioning) = ImageSampling.Draw(source.AsImageSource(), count, source.Classes, SampleBatch(), g, new CountProgress(bar));
                Lap("sampling");
                if (memorize)
                {
                    var shardsDir = parse.GetValue(trainTokens) ?? source.Manifest.Data.Tokens;
                    if (File.Exists(Path.Combine(shardsDir, "tokens.npy")))
                    {
                        generatedTokens = source.SampledTokens();
                        trainSequences = TrainingSequences.FromShards(shardsDir);
                    }
                    else Console.Error.WriteLine($"note: the training shards '{shardsDir}' are not there; the copied-sequence fraction is skipped (give --train-tokens DIR)");
                }
                var valCe = source.LoggedValCe();
                provenance["checkpoint"] = Path.GetFullPath(run);
                provenance["step"] = source.Manifest.State.Step;
                provenance["seed"] = parse.GetValue(seed);
                provenance["cfg"] = options.CfgScale;
                provenance["cfg_schedule"] = options.CfgSchedule.Name();
                provenance["val_ce"] = valCe?.ValCe;
                provenance["val_ce_step"] = valCe?.Step;
                Lap("training_sequences");
            }
            else
            {
                (generated, conditioning) = GeneratedImages.Load(imagesPath!, parse.GetValue(labels), real.Classes);
                if (parse.GetValue(n) is { } limit)
                {
                    if (limit > generated.shape[0]) throw new SnceUserException($"--n {limit} but {imagesPath} has only {generated.shape[0]} images");
                    generated = generated.narrow(0, 0, Math.Max(limit, 0));
                    conditioning = conditioning?.narrow(0, 0, Math.Max(limit, 0));
                }
                provenance["images"] = Path.GetFullPath(imagesPath!);
                provenance["step"] = parse.GetValue(step);
            }
            if (conditioning is not null && clf is null)
                Console.Error.WriteLine("note: the images have classes but no --classifier was given; class accuracy is skipped");
            var chosen = parse.GetValue(backend) switch
            {
                "onnx" => FeatureBackend.Onnx,
                "torch" => FeatureBackend.Torch,
                _ => dev.type == TorchSharp.DeviceType.CUDA ? FeatureBackend.Torch : FeatureBackend.Onnx,
            };
            Lap("other");
            using var extractor = new ResNet18Features(chosen, parse.GetValue(batch), parse.GetValue(threads), chosen == FeatureBackend.Torch ? dev : null);
            Lap("load_resnet18");
            RealReference reference;
            using (var idx = real.IndicesOf(Snce.Data.ImageDataset.ValidationSplit))
            using (var bar = new ProgressBar("real features (cached after)", idx.shape[0]))
                reference = RealFeatureCache.GetOrCompute(real, extractor, parse.GetValue(cacheDir), new CountProgress(bar));
            RealReference? trainReference = null;
            if (memorize)
            {
                using var trainIdx = real.IndicesOf(Snce.Data.ImageDataset.TrainSplit);
                if (trainIdx.shape[0] >= 2)
                    using (var bar = new ProgressBar("training features (cached after)", trainIdx.shape[0]))
                        trainReference = RealFeatureCache.GetOrCompute(real, extractor, parse.GetValue(cacheDir), new CountProgress(bar), Snce.Data.ImageDataset.TrainSplit);
                else Console.Error.WriteLine($"note: {real.Name} has {trainIdx.shape[0]} training images; the memorization metrics are skipped");
            }
            Lap("real_features");
            // Depends on the two references only: computed once per data set and cached beside their features.
            double? validationNn = trainReference is null ? null
                : RealFeatureCache.ValidationNearestTrainDistance(reference, trainReference, parse.GetValue(cacheDir), extractor.Device);
            Lap("validation_nearest_train");
            ImageSetEvaluation result;
            using (var bar = new ProgressBar("generated features", generated.shape[0]))
                result = ImageSetEvaluator.Evaluate(generated, conditioning, reference, extractor, clf, parse.GetValue(k), new CountProgress(bar),
                    trainReference is null ? null : new MemorizationInputs(trainReference, generatedTokens, trainSequences, validationNn), Lap);
            trainReference?.Dispose();
            generatedTokens?.Dispose();
            var seconds = (DateTime.UtcNow - started).TotalSeconds;
            reference.Dispose();
            clf?.Model.Dispose();
            var record = Record(result, provenance, seconds, chosen);
            record["phase_seconds"] = phases;
            if (inpainting is not null) record["inpainting"] = inpainting;
            if (bestRule is { } rule) KeepBest(run!, rule, result, provenance, record);
            if (parse.GetValue(logTo) is { } logRun) AppendToRun(logRun, (long)(provenance["step"] ?? 0L), result, provenance["val_ce"] as double?);
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(record, Json.Options));
            else
            {
                Print(result, provenance);
                if (inpainting is { } ip) PrintInpainting(ip, provenance);
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>The printed/JSON result: fd, precision, recall, class_accuracy (+ the classifier's held-out accuracy), val_ce, n, seed, data set.</summary>
    static Dictionary<string, object?> Record(ImageSetEvaluation r, Dictionary<string, object?> provenance, double seconds, FeatureBackend backend)
    {
        var record = new Dictionary<string, object?>
        {
            ["data_set"] = r.DataSet,
            ["n"] = r.N,
            ["fd"] = r.Fd,
            ["fd_name"] = "FD-ResNet18",
            ["precision"] = r.Precision,
            ["recall"] = r.Recall,
            ["k"] = r.K,
            ["class_accuracy"] = r.ClassAccuracy?.Accuracy,
            ["classifier_held_out_accuracy"] = r.ClassAccuracy?.ClassifierHeldOutAccuracy,
        };
        var m = r.Memorization;
        record["fd_train"] = m?.FdTrain;
        record["nn_ratio"] = m?.NnRatio;
        record["nn_distance_generated"] = m?.GeneratedNnDistance;
        record["nn_distance_validation"] = m?.ValidationNnDistance;
        record["copy_fraction"] = m?.CopyFraction;
        record["train_sequences"] = m?.TrainSequences;
        record["train_count"] = m?.TrainCount;
        foreach (var (key, value) in provenance) record[key] = value;
        record["real_count"] = r.RealCount;
        record["feature_space"] = r.FeatureSpace;
        record["feature_backend"] = backend.ToString().ToLowerInvariant();
        record["seconds"] = Math.Round(seconds, 2);
        return record;
    }

    static void Print(ImageSetEvaluation r, Dictionary<string, object?> provenance)
    {
        if (provenance["checkpoint"] is string ckpt)
            Console.WriteLine($"checkpoint      {ckpt} at step {provenance["step"]} (seed {provenance["seed"]}, cfg {provenance["cfg"]} {provenance["cfg_schedule"]})");
        Console.WriteLine($"FD-ResNet18     {r.Fd,10:F3}   ({r.N:N0} generated vs {r.RealCount:N0} real validation images of {r.DataSet})");
        Console.WriteLine($"precision       {r.Precision,10:F4}   (k = {r.K})");
        Console.WriteLine($"recall          {r.Recall,10:F4}");
        if (r.ClassAccuracy is { } c)
            Console.WriteLine($"class accuracy  {c.Accuracy,10:F4}   (classifier's held-out accuracy on real {c.ClassifierDataSet}: {c.ClassifierHeldOutAccuracy:F4})");
        else
            Console.WriteLine("class accuracy         n/a   (needs class-conditional images and --classifier)");
        if (r.Memorization is { } m)
        {
            Console.WriteLine($"FD vs train     {m.FdTrain,10:F3}   (against {m.TrainCount:N0} real training images)");
            Console.WriteLine($"NN ratio        {m.NnRatio,10:F4}   (mean nearest-training distance, generated {m.GeneratedNnDistance:F3} / validation {m.ValidationNnDistance:F3}; ≈ 1 novel, → 0 copies)");
            Console.WriteLine(m.CopyFraction is { } copied
                ? $"copied tokens   {copied,10:F4}   (share of generated token sequences identical to one of {m.TrainSequences:N0} training sequences)"
                : "copied tokens          n/a   (needs --checkpoint and its training shards)");
        }
        if (provenance["checkpoint"] is not null)
            Console.WriteLine(provenance["val_ce"] is double ce ? $"val CE          {ce,10:F4}   (hard CE from the run's log at step {provenance["val_ce_step"]})" : "val CE                 n/a   (not in the run's metrics.jsonl)");
    }

    static void PrintInpainting(InpaintingScores s, Dictionary<string, object?> provenance)
    {
        Console.WriteLine($"inpainting      {provenance["inpaint_region"]}: {s.RegionPixels} pixels, {s.RegionTokens} of {s.Tokens} tokens regenerated per image ({s.N:N0} validation images)");
        Console.WriteLine($"PSNR in region  {s.PsnrInRegion,10:F3}   dB (the tokenizer's reconstruction of the source: {s.ReconstructionPsnrInRegion:F3} dB)");
        Console.WriteLine($"L1 in region    {s.L1InRegion,10:F4}   (reconstruction: {s.ReconstructionL1InRegion:F4}; pixel values in [0, 1])");
        Console.WriteLine($"tokens changed  {s.TokensChangedOutside,10}   outside the region; {s.TokensChangedInside:P1} of the region's tokens differ from the source's");
        Console.WriteLine("                class accuracy above = classifier consistency: the edited image keeps its source's class");
    }

    /// <summary>Offers the run's checkpoint as its best under <paramref name="rule"/>; adds best_step and best_value to the record.</summary>
    static void KeepBest(string run, BestRule rule, ImageSetEvaluation r, Dictionary<string, object?> provenance, Dictionary<string, object?> record)
    {
        var step = (long)provenance["step"]!;
        double value;
        if (rule == BestRule.Fd) value = r.Fd;
        else if (provenance["val_ce"] is double ce && provenance["val_ce_step"] is long at && at == step) value = ce;
        else throw new SnceUserException($"--keep-best val-ce: the run logged no validation CE at step {step}; train with --validate-every dividing the evaluation steps, or use --keep-best fd");
        var kept = BestCheckpoint.Offer(run, rule, step, value);
        record["best_rule"] = kept.Rule;
        record["best_step"] = kept.Step;
        record["best_value"] = kept.Value;
        Console.Error.WriteLine($"best by {kept.Rule}: step {kept.Step} ({kept.Value:F4}) in {BestCheckpoint.FolderOf(run)}");
    }

    static void AppendToRun(string run, long step, ImageSetEvaluation r, double? valCe)
    {
        if (!Directory.Exists(run)) throw new DirectoryNotFoundException($"no run folder {run} for --log-to");
        var values = new Dictionary<string, double> { ["fd"] = r.Fd, ["precision"] = r.Precision, ["recall"] = r.Recall, ["n"] = r.N };
        if (valCe is { } ce) values["val_ce"] = ce;
        if (r.Memorization is { } m)
        {
            values["fd_train"] = m.FdTrain;
            values["nn_ratio"] = m.NnRatio;
            if (m.CopyFraction is { } copies) values["copy_fraction"] = copies;
        }
        if (r.ClassAccuracy is { } c)
        {
            values["class_accuracy"] = c.Accuracy;
            values["classifier_held_out_accuracy"] = c.ClassifierHeldOutAccuracy;
        }
        new MetricsLog(new RunFolder(run), tensorBoard: false).Write(step, "eval", values);
    }

    /// <summary>True when <paramref name="run"/> holds a paired run's checkpoint; a missing one is reported later (after the run folder's lock).</summary>
    static bool IsPaired(string run)
    {
        try { return GeneratorCheckpoint.ReadManifest(run).Model.Source is not null; }
        catch (FileNotFoundException) { return false; }
    }

    sealed class CountProgress(ProgressBar bar) : IProgress<int>
    {
        public void Report(int value) => bar.Report(value);
    }
}
