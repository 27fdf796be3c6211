using System.CommandLine;
using System.Text.Json;
using Snce.Data;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary><c>snce tokenizer eval</c>: PSNR, SSIM, codebook utilization and perplexity on the validation split, and a PNG of reconstructions.</summary>
public static class TokenizerEvalCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var data = new DataOptionsCli();
        data.Data.Required = false;
        data.Data.Description = "Images to evaluate on (default: the data set the tokenizer was trained on, from its training.json).";
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer checkpoint folder (from 'snce tokenizer train').", Required = true, HelpName = "DIR" };
        var split = new Option<string>("--split") { Description = "Which split to evaluate: validation or train.", DefaultValueFactory = _ => "validation", HelpName = "validation|train" };
        var batch = new Option<int>("--batch") { Description = "Images per batch.", DefaultValueFactory = _ => 256, HelpName = "B" };
        var grid = new Option<string?>("--grid") { Description = "PNG of originals (rows) above their reconstructions (default: DIR/reconstructions.png).", HelpName = "PNG" };
        var samples = new Option<int>("--samples") { Description = "Images shown in the grid (the split's first N).", DefaultValueFactory = _ => 32, HelpName = "N" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: psnr, ssim, utilization, perplexity, codebook_size, images, ..." };
        split.AcceptOnlyFromAmong("validation", "train");

        var cmd = new Command("eval", "Measure a tokenizer on the validation split: PSNR, SSIM, codebook utilization, code perplexity, encode tokens/s; write a PNG of originals above reconstructions.");
        cmd.Options.Add(tokenizer);
        data.AddTo(cmd);
        foreach (var o in new Option[] { split, batch, grid, samples, json }) cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(tokenizer)!;
            var config = TokenizerCheckpoint.LoadConfig(dir);
            var dataName = parse.GetValue(data.Data) ?? TokenizerCheckpoint.LoadState(dir)?.Data
                ?? throw new ArgumentException($"{dir} does not record its training data; pass --data");
            if (parse.GetValue(batch) < 1 || parse.GetValue(samples) < 0)
                throw new ArgumentException("--batch must be ≥ 1 and --samples ≥ 0");
            var dev = device.Resolve(parse);
            using var model = TokenizerCheckpoint.Load(dir, dev);
            using var dataset = TokenizerCommand.LoadDataFor(data, parse, dataName, config);
            var which = parse.GetValue(split) == "train" ? ImageDataset.TrainSplit : ImageDataset.ValidationSplit;
            using var rows = dataset.IndicesOf(which);
            using var images = dataset.Images.index_select(0, rows);
            if (images.shape[0] == 0) throw new ArgumentException($"the {parse.GetValue(split)} split of {dataset.Name} is empty");
            var result = TokenizerEvaluator.Evaluate(model, images, parse.GetValue(batch));
            string? gridPath = null;
            var n = (int)Math.Min(parse.GetValue(samples), images.shape[0]);
            if (n > 0)
            {
                gridPath = parse.GetValue(grid) ?? Path.Combine(TokenizerCheckpoint.Resolve(dir), "reconstructions.png");
                using var scope = NewDisposeScope();
                var originals = images.narrow(0, 0, n);
                var reconstructions = TokenizerEvaluator.Reconstruct(model, originals, parse.GetValue(batch));
                var columns = Math.Min(n, 16);
                ImageGrid.SavePng(gridPath, TokenizerCommand.Interleave(originals, reconstructions, columns), columns);
            }
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    psnr = result.Psnr, ssim = result.Ssim, utilization = result.Utilization, perplexity = result.Perplexity,
                    codebook_size = result.CodebookSize, images = result.Images, codes_used = result.CodesUsed,
                    tokens_per_image = result.TokensPerImage, encode_tokens_per_second = result.EncodeTokensPerSecond,
                    metric = config.Metric, quantizer = config.Quantizer.ToString().ToLowerInvariant(), data = dataset.Name,
                    split = parse.GetValue(split), tokenizer = Path.GetFullPath(dir), grid = gridPath is null ? null : Path.GetFullPath(gridPath),
                }, Json.Options));
            else
            {
                Console.WriteLine($"{dataset.Name} {parse.GetValue(split)} ({result.Images:N0} images, {result.TokensPerImage} tokens each):");
                Console.WriteLine($"  PSNR         {result.Psnr:F2} dB");
                Console.WriteLine($"  SSIM         {result.Ssim:F4}");
                Console.WriteLine($"  utilization  {result.Utilization:P1} ({result.CodesUsed:N0} of {result.CodebookSize:N0} codes)");
                Console.WriteLine($"  perplexity   {result.Perplexity:N1}");
                Console.WriteLine($"  encode       {result.EncodeTokensPerSecond:N0} tokens/s on {dev}");
                if (gridPath is not null) Console.WriteLine($"  grid         {gridPath} (originals above reconstructions)");
            }
            if (gridPath is not null && dataset.Credit is { } credit) Console.Error.WriteLine($"credit: {credit}");
            return 0;
        });
        return cmd;
    }
}
