using System.CommandLine;
using System.Text.Json;
using Snce.Evaluation;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce eval</c>: FD-ResNet18, precision/recall and class accuracy of a set of generated images against the
/// real validation split of a data set.
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
            HelpName = "NPY|DIR", Required = true,
        };
        var labels = new Option<string?>("--labels") { Description = "Integer .npy [N] with each image's conditioning class (for class accuracy).", HelpName = "NPY" };
        var classifier = new Option<string?>("--classifier") { Description = "Classifier checkpoint from 'snce classifier train' (class accuracy needs it and labels).", HelpName = "DIR" };
        var n = new Option<int?>("--n") { Description = "Evaluate only the first N images (default: all). Compare FD-ResNet18 values only at equal N.", HelpName = "N" };
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
        var logTo = new Option<string?>("--log-to") { Description = "Also append the result as a record {step, split: \"eval\", fd, ...} to RUN/metrics.jsonl (needs --step).", HelpName = "RUN" };
        var step = new Option<long?>("--step") { Description = "Training step of the images, for --log-to.", HelpName = "STEP" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var cmd = new Command("eval", "Score generated images against a data set's real validation split: FD-ResNet18, precision, recall, class accuracy.");
        cmd.Options.Add(images);
        cmd.Options.Add(labels);
        data.AddTo(cmd);
        foreach (var o in new Option[] { classifier, n, k, backend, batch, threads, cacheDir, logTo, step, json }) cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(logTo) is not null && parse.GetValue(step) is null)
                throw new SnceUserException("--log-to needs --step (the training step the images come from)");
            var dev = device.Resolve(parse);
            using var real = data.Load(parse);
            var (generated, conditioning) = GeneratedImages.Load(parse.GetValue(images)!, parse.GetValue(labels), real.Classes);
            if (parse.GetValue(n) is { } limit)
            {
                if (limit > generated.shape[0]) throw new SnceUserException($"--n {limit} but {parse.GetValue(images)} has only {generated.shape[0]} images");
                generated = generated.narrow(0, 0, Math.Max(limit, 0));
                conditioning = conditioning?.narrow(0, 0, Math.Max(limit, 0));
            }
            var clf = parse.GetValue(classifier) is { } dir ? ClassifierCheckpoint.Load(dir, dev) : null;
            if (clf is not null && !clf.Info.Classes.SequenceEqual(real.Classes))
                throw new SnceUserException($"the classifier was trained on {clf.Info.DataSet} with classes [{string.Join(", ", clf.Info.Classes)}], not the classes of {real.Name}");
            if (conditioning is not null && clf is null)
                Console.Error.WriteLine("note: labels given but no --classifier; class accuracy is skipped");
            var chosen = parse.GetValue(backend) switch
            {
                "onnx" => FeatureBackend.Onnx,
                "torch" => FeatureBackend.Torch,
                _ => dev.type == TorchSharp.DeviceType.CUDA ? FeatureBackend.Torch : FeatureBackend.Onnx,
            };
            using var extractor = new ResNet18Features(chosen, parse.GetValue(batch), parse.GetValue(threads), chosen == FeatureBackend.Torch ? dev : null);
            RealReference reference;
            using (var bar = new ProgressBar("real features (cached after)", real.IndicesOf(Snce.Data.ImageDataset.ValidationSplit).shape[0]))
                reference = RealFeatureCache.GetOrCompute(real, extractor, parse.GetValue(cacheDir), new CountProgress(bar));
            ImageSetEvaluation result;
            var started = DateTime.UtcNow;
            using (var bar = new ProgressBar("generated features", generated.shape[0]))
                result = ImageSetEvaluator.Evaluate(generated, conditioning, reference, extractor, clf, parse.GetValue(k), new CountProgress(bar));
            var seconds = (DateTime.UtcNow - started).TotalSeconds;
            reference.Dispose();
            clf?.Model.Dispose();
            var record = Record(result, parse.GetValue(images)!, seconds);
            if (parse.GetValue(logTo) is { } run) AppendToRun(run, parse.GetValue(step)!.Value, result);
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(record, Json.Options));
            else Print(result);
            return 0;
        });
        return cmd;
    }

    /// <summary>The printed/JSON result: fd, precision, recall, class_accuracy (+ the classifier's held-out accuracy), n, seed, data set.</summary>
    static Dictionary<string, object?> Record(ImageSetEvaluation r, string images, double seconds) => new()
    {
        ["data_set"] = r.DataSet,
        ["images"] = Path.GetFullPath(images),
        ["n"] = r.N,
        ["seed"] = null, // images given as files: drawn elsewhere
        ["fd"] = r.Fd,
        ["fd_name"] = "FD-ResNet18",
        ["precision"] = r.Precision,
        ["recall"] = r.Recall,
        ["k"] = r.K,
        ["class_accuracy"] = r.ClassAccuracy?.Accuracy,
        ["classifier_held_out_accuracy"] = r.ClassAccuracy?.ClassifierHeldOutAccuracy,
        ["val_ce"] = null, // a property of a generator checkpoint, not of images
        ["real_count"] = r.RealCount,
        ["feature_space"] = r.FeatureSpace,
        ["seconds"] = Math.Round(seconds, 2),
    };

    static void Print(ImageSetEvaluation r)
    {
        Console.WriteLine($"FD-ResNet18     {r.Fd,10:F3}   ({r.N:N0} generated vs {r.RealCount:N0} real validation images of {r.DataSet})");
        Console.WriteLine($"precision       {r.Precision,10:F4}   (k = {r.K})");
        Console.WriteLine($"recall          {r.Recall,10:F4}");
        if (r.ClassAccuracy is { } c)
            Console.WriteLine($"class accuracy  {c.Accuracy,10:F4}   (classifier's held-out accuracy on real {c.ClassifierDataSet}: {c.ClassifierHeldOutAccuracy:F4})");
        else
            Console.WriteLine("class accuracy         n/a   (needs --labels and --classifier)");
    }

    static void AppendToRun(string run, long step, ImageSetEvaluation r)
    {
        if (!Directory.Exists(run)) throw new DirectoryNotFoundException($"no run folder {run} for --log-to");
        var values = new Dictionary<string, object?>
        {
            ["step"] = step, ["split"] = "eval", ["fd"] = r.Fd, ["precision"] = r.Precision, ["recall"] = r.Recall, ["n"] = r.N,
        };
        if (r.ClassAccuracy is { } c)
        {
            values["class_accuracy"] = c.Accuracy;
            values["classifier_held_out_accuracy"] = c.ClassifierHeldOutAccuracy;
        }
        File.AppendAllText(Path.Combine(run, "metrics.jsonl"), JsonSerializer.Serialize(values) + "\n");
    }

    sealed class CountProgress(ProgressBar bar) : IProgress<int>
    {
        public void Report(int value) => bar.Report(value);
    }
}
