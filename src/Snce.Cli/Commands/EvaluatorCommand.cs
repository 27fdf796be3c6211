using System.CommandLine;
using System.Text.Json;
using Snce.Evaluation;
using Snce.Text;

namespace Snce.Cli.Commands;

/// <summary><c>snce evaluator train</c>: the contrastive image–text model ("EmojiCLIP") behind text-alignment scores.</summary>
public static class EvaluatorCommand
{
    public static Command Create()
    {
        var cmd = new Command("evaluator", "Train the image–text evaluator that scores text-to-image samples (R@1/R@5, cosine in 'snce eval --prompts').");
        cmd.Subcommands.Add(Train());
        return cmd;
    }

    static Command Train()
    {
        var defaults = new TextEvaluatorOptions();
        var device = new DeviceOptions();
        var data = new DataOptionsCli();
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => defaults.Steps };
        var batch = new Option<int>("--batch") { Description = "(image, caption) pairs per step: the InfoNCE negatives.", DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "Peak AdamW learning rate (cosine decay to 0).", DefaultValueFactory = _ => defaults.LearningRate };
        var width = new Option<int>("--width") { Description = "Channels of the image tower's first conv stage.", DefaultValueFactory = _ => defaults.Width };
        var seed = new Option<long>("--seed") { Description = "Seeds initialization and batch order.", DefaultValueFactory = _ => defaults.Seed };
        var output = new Option<string>("--out") { Description = "Evaluator folder to write (replaced atomically).", HelpName = "DIR", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object." };
        var cmd = new Command("train",
            "Train an image tower against frozen pooled MiniLM caption vectors (symmetric InfoNCE) on the real training split of a captioned data set; " +
            "report the real held-out ceiling: R@1/R@5 of the true caption among 100 and mean matched cosine, for held-out images and held-out phrasings.");
        data.AddTo(cmd);
        device.AddTo(cmd);
        foreach (var o in new Option[] { steps, batch, lr, width, seed, output, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(output)!;
            using var held = FolderLocks.Take(dir, "snce evaluator train");               // one writer, and --out writable, before any work
            var dev = device.Resolve(parse);
            using var dataset = data.Load(parse);
            var captions = CaptionSet.From(dataset);
            var options = new TextEvaluatorOptions
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), Width = parse.GetValue(width), Seed = parse.GetValue(seed),
            };
            options.Validate();
            var started = DateTime.UtcNow;
            using var cache = new TextEmbeddingCache();
            TextEvaluator trained;
            using var stop = new StopSignals("stopping after this step; an evaluator trained part-way is not saved");
            using (var bar = new ProgressBar("evaluator", options.Steps))
                trained = TextEvaluator.Train(dataset, captions, cache, options, dev, new Progress(bar), stop.Token);
            using (trained)
            {
                if (stop.Received is not null)
                {
                    Console.Error.WriteLine($"snce: stopped at step {trained.Info.Steps} of {options.Steps}; nothing was written (evaluator training is short and does not resume: run it again)");
                    return stop.ExitCode;
                }
                trained.Save(dir);
                var info = trained.Info;
                var seconds = (DateTime.UtcNow - started).TotalSeconds;
                if (parse.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new { evaluator = Path.GetFullPath(dir), info, seconds, device = dev.ToString() }, Json.Options));
                else
                {
                    Console.WriteLine($"text evaluator for {info.DataSet}: trained {info.Steps:N0} steps on {info.TrainCount:N0} images in {seconds:F0} s on {dev}; saved to {Path.GetFullPath(dir)}");
                    foreach (var (name, s) in new[] { ("held-out images", info.HeldOutImages), ("held-out phrasings", info.HeldOutPhrasings) })
                        if (s is not null)
                            Console.WriteLine($"  real {name}: R@1 {s.R1:P1}, R@5 {s.R5:P1} among {s.Candidates}, mean cosine {s.MeanCosine:F3} ({s.Count:N0} images)");
                }
            }
            return 0;
        });
        return cmd;
    }

    sealed class Progress(ProgressBar bar) : IProgress<(int Step, double Loss)>
    {
        public void Report((int Step, double Loss) value) => bar.Report(value.Step, $"loss {value.Loss:F3}");
    }
}
