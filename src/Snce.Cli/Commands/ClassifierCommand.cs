using System.CommandLine;
using System.Text.Json;
using Snce.Data;
using Snce.Evaluation;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce classifier train</c>: the classifier behind class accuracy, trained on a data set's real training split; with
/// <c>--label vendor</c>, the one behind the vendor success rate of translations (which vendor drew an emoji).
/// </summary>
public static class ClassifierCommand
{
    public static Command Create()
    {
        var cmd = new Command("classifier", "Train the small CNN that scores class-conditional samples (class accuracy in 'snce eval') or, with --label vendor, translations (vendor success rate).");
        cmd.Subcommands.Add(Train());
        return cmd;
    }

    static Command Train()
    {
        var defaults = new ClassifierTrainOptions();
        var device = new DeviceOptions();
        var data = new DataOptionsCli();
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => defaults.Steps };
        var batch = new Option<int>("--batch") { Description = "Images per step.", DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "Peak AdamW learning rate (cosine decay to 0).", DefaultValueFactory = _ => defaults.LearningRate };
        var width = new Option<int>("--width") { Description = "Channels of the first conv stage (32: ≈ 0.33 M parameters).", DefaultValueFactory = _ => defaults.Width };
        var seed = new Option<long>("--seed") { Description = "Seeds initialization and batch order.", DefaultValueFactory = _ => defaults.Seed };
        var output = new Option<string>("--out") { Description = "Checkpoint folder to write (replaced atomically).", HelpName = "DIR", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object." };
        var label = new Option<string>("--label")
        {
            Description = "What to tell apart: class (the data set's classes) or vendor (which emoji vendor drew the image; --data emoji, vendors from --vendors; " +
                "for the vendor success rate of 'snce eval --checkpoint PAIRED_RUN --vendor-classifier DIR').",
            DefaultValueFactory = _ => "class", HelpName = "class|vendor",
        };
        label.AcceptOnlyFromAmong(EnumNames<ClassifierLabel>.Allowed.Split(", "));
        var vendors = new Option<string?>("--vendors")
        {
            Description = $"With --label vendor: the vendors, comma-separated, in label order (default {string.Join(",", EmojiVendorSet.DefaultVendors.Select(EnumNames<EmojiVendor>.Name))}; apple is not licensed for commercial use). " +
                "Held out: the emoji of the validation split (by code point), for every vendor.",
            HelpName = "V,V[,...]",
        };
        var cmd = new Command("train", "Train the evaluation classifier on the real training split; report held-out accuracy; save an atomic checkpoint.");
        data.AddTo(cmd);
        device.AddTo(cmd);
        foreach (var o in new Option[] { label, vendors, steps, batch, lr, width, seed, output, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(output)!;
            var kind = EnumNames<ClassifierLabel>.Parse(parse.GetValue(label)!);
            var vendorList = VendorList(parse, kind, data, vendors);
            using var held = FolderLocks.Take(dir, "snce classifier train");              // one writer, and --out writable, before any work
            var dev = device.Resolve(parse);
            using var dataset = vendorList is null ? data.Load(parse) : LoadVendors(vendorList, data.ToOptions(parse));
            var options = new ClassifierTrainOptions
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr),
                Width = parse.GetValue(width), Seed = parse.GetValue(seed), Label = kind,
            };
            var started = DateTime.UtcNow;
            TrainedClassifier trained;
            using var stop = new StopSignals("stopping after this step; a classifier trained part-way is not saved");
            using (var bar = new ProgressBar("classifier", options.Steps))
                trained = ClassifierTraining.Train(dataset, options, dev, new StepProgress(bar), stop.Token);
            if (stop.Received is not null)
            {
                trained.Model.Dispose();
                Console.Error.WriteLine($"snce: stopped at step {trained.Info.Steps} of {options.Steps}; nothing was written (classifier training is short and does not resume: run it again)");
                return stop.ExitCode;
            }
            ClassifierCheckpoint.Save(dir, trained.Model, trained.Info);
            trained.Model.Dispose();
            var info = trained.Info;
            var seconds = (DateTime.UtcNow - started).TotalSeconds;
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    checkpoint = Path.GetFullPath(dir), data_set = info.DataSet, label = EnumNames<ClassifierLabel>.Name(info.Label), classes = info.Classes,
                    held_out_accuracy = info.HeldOutAccuracy,
                    held_out_count = info.HeldOutCount, train_count = info.TrainCount, steps = info.Steps, seconds, device = dev.ToString(),
                }, Json.Options));
            else
                Console.WriteLine($"{(info.Label == ClassifierLabel.Vendor ? "vendor classifier" : "classifier")} for {info.DataSet}: held-out accuracy {info.HeldOutAccuracy:P2} on {info.HeldOutCount:N0} validation images " +
                    $"(trained {info.Steps:N0} steps on {info.TrainCount:N0} images, {seconds:F0} s on {dev}); saved to {Path.GetFullPath(dir)}");
            return 0;
        });
        return cmd;
    }

    /// <summary>The vendors of a vendor classifier (null for a class classifier), after checking the options that go with each.</summary>
    static EmojiVendor[]? VendorList(ParseResult parse, ClassifierLabel kind, DataOptionsCli data, Option<string?> vendors)
    {
        if (kind == ClassifierLabel.Class)
        {
            if (parse.GetValue(vendors) is not null) throw new SnceUserException("--vendors belongs to --label vendor");
            return null;
        }
        if (parse.GetValue(data.Data) is var name && !string.Equals(name?.Trim(), "emoji", StringComparison.OrdinalIgnoreCase))
            throw new SnceUserException($"--label vendor reads the emoji of several vendors: give --data emoji (and --vendors), not --data {name}");
        if (parse.GetValue(data.Vendor) is not null) throw new SnceUserException("--label vendor takes several vendors: use --vendors twitter,google, not --vendor");
        return parse.GetValue(vendors) is { } list ? EmojiVendorSet.Parse(list) : EmojiVendorSet.DefaultVendors;
    }

    static ImageDataset LoadVendors(EmojiVendor[] vendors, DataOptions options)
    {
        ImageDataset data;
        using (var progress = new DataProgressBar()) data = EmojiVendorSet.Load(vendors, options, progress: progress);
        DataOptionsCli.PrintNotices(data);
        return data;
    }

    sealed class StepProgress(ProgressBar bar) : IProgress<ClassifierStep>
    {
        public void Report(ClassifierStep value) => bar.Report(value.Step, $"loss {value.Loss:F3}");
    }
}
