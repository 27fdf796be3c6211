using System.CommandLine;
using System.Text.Json;
using Snce.Evaluation;

namespace Snce.Cli.Commands;

/// <summary><c>snce classifier train</c>: the classifier behind class accuracy, trained on a data set's real training split.</summary>
public static class ClassifierCommand
{
    public static Command Create()
    {
        var cmd = new Command("classifier", "Train the small CNN that scores class-conditional samples (class accuracy in 'snce eval').");
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
        var cmd = new Command("train", "Train the evaluation classifier on the real training split; report held-out accuracy; save an atomic checkpoint.");
        data.AddTo(cmd);
        device.AddTo(cmd);
        foreach (var o in new Option[] { steps, batch, lr, width, seed, output, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(output)!;
            using var held = FolderLocks.Take(dir, "snce classifier train");              // one writer, and --out writable, before any work
            var dev = device.Resolve(parse);
            using var dataset = data.Load(parse);
            var options = new ClassifierTrainOptions
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr),
                Width = parse.GetValue(width), Seed = parse.GetValue(seed),
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
                    checkpoint = Path.GetFullPath(dir), data_set = info.DataSet, held_out_accuracy = info.HeldOutAccuracy,
                    held_out_count = info.HeldOutCount, train_count = info.TrainCount, steps = info.Steps, seconds, device = dev.ToString(),
                }, Json.Options));
            else
                Console.WriteLine($"classifier for {info.DataSet}: held-out accuracy {info.HeldOutAccuracy:P2} on {info.HeldOutCount:N0} validation images " +
                    $"(trained {info.Steps:N0} steps on {info.TrainCount:N0} images, {seconds:F0} s on {dev}); saved to {Path.GetFullPath(dir)}");
            return 0;
        });
        return cmd;
    }

    sealed class StepProgress(ProgressBar bar) : IProgress<ClassifierStep>
    {
        public void Report(ClassifierStep value) => bar.Report(value.Step, $"loss {value.Loss:F3}");
    }
}
