using System.CommandLine;
using System.Text.Json;
using Snce.Tokenizer;

namespace Snce.Cli.Commands;

/// <summary><c>snce tokenize</c>: turns a data set into token shards for generator training, with what SNCE needs.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var data = new DataOptionsCli();
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer checkpoint folder (from 'snce tokenizer train').", Required = true, HelpName = "DIR" };
        var output = new Option<string>("--out") { Description = "Token shard folder to write (shards.json, tokens.npy, labels.npy, split.npy, codebook.npy, ...).", Required = true, HelpName = "SHARDS" };
        var neighbors = new Option<int>("--neighbors-k") { Description = "k of the code-anchored neighbor table (each code's k nearest codes by the tokenizer's metric) and of --latents topk; 0: no table.", DefaultValueFactory = _ => 32, HelpName = "k" };
        var latents = new Option<string>("--latents") { Description = "Per-position latent information for latent-anchored SNCE: none, full (float16 [M, T, D]) or topk (ids + distances of each latent's k nearest codes).", DefaultValueFactory = _ => "none", HelpName = "none|full|topk" };
        var batch = new Option<int>("--batch") { Description = "Images per batch.", DefaultValueFactory = _ => 256, HelpName = "B" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (counts, bytes per image, tokens/s)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the files of a non-empty --out folder (runs trained on the old shards then no longer match them)." };
        latents.AcceptOnlyFromAmong("none", "full", "topk");

        var cmd = new Command("tokenize", "Tokenize a data set (both splits) into token shards: tokens, labels, split, codebook, the code-anchored neighbor table and optional latents or their top-k code neighbors.");
        cmd.Options.Add(tokenizer);
        data.AddTo(cmd);
        foreach (var o in new Option[] { output, neighbors, latents, batch, overwrite, json }) cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(tokenizer)!;
            var outDir = parse.GetValue(output)!;
            using var held = FolderLocks.Take(outDir, "snce tokenize");                    // one writer, and --out writable, before any work
            if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !parse.GetValue(overwrite))
                throw new ArgumentException(File.Exists(Path.Combine(outDir, Snce.Data.TokenShards.InfoFile))
                    ? $"'{outDir}' already holds token shards (runs may train on them); choose another --out, or pass --overwrite to replace them"
                    : $"'{outDir}' is not empty; choose another --out, or pass --overwrite to write token shards into it");
            var config = TokenizerCheckpoint.LoadConfig(dir);
            var options = new TokenizeOptions
            {
                NeighborsK = parse.GetValue(neighbors),
                Latents = Enum.Parse<LatentStorage>(parse.GetValue(latents)!, ignoreCase: true),
                BatchSize = parse.GetValue(batch),
            };
            if (options.NeighborsK < 0 || options.NeighborsK > config.CodebookSize)
                throw new ArgumentException($"--neighbors-k must be in [0, {config.CodebookSize}] (the codebook size), got {options.NeighborsK}");
            var dev = device.Resolve(parse);
            using var model = TokenizerCheckpoint.Load(dir, dev);
            using var dataset = TokenizerCommand.LoadDataFor(data, parse, parse.GetValue(data.Data)!, config);
            var result = DatasetTokenizer.Tokenize(model, dataset, TokenizerCheckpoint.Resolve(dir), options,
                TokenizerTrainCommand.DataReference(parse.GetValue(data.Data)!));
            using var shards = result.Shards;
            shards.Save(outDir);
            var info = shards.Info;
            var perImage = info.BytesPerImage.Values.Sum();
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    out_dir = Path.GetFullPath(outDir), images = info.Count, tokens_per_image = info.SequenceLength,
                    codebook_size = info.CodebookSize, code_dim = info.CodeDim, metric = info.Metric, neighbors_k = info.NeighborsK,
                    latents = info.Latents, bytes_per_image = info.BytesPerImage, bytes_per_image_total = perImage,
                    fixed_bytes = result.FixedBytes, seconds = result.Seconds, tokens_per_second = result.TokensPerSecond,
                }, Json.Options));
            else
            {
                Console.WriteLine($"tokenized {info.Count:N0} images of {dataset.Name} ({info.Grid[0]}×{info.Grid[1]} = {info.SequenceLength} tokens each) " +
                    $"in {result.Seconds:F1} s ({result.TokensPerSecond:N0} tokens/s on {dev}) → {outDir}");
                Console.WriteLine($"  bytes per image: {string.Join(", ", info.BytesPerImage.Select(kv => $"{kv.Key} {kv.Value:N0}"))} (total {perImage:N0})");
                Console.WriteLine($"  fixed: codebook {config.CodebookSize:N0}×{config.CodeDim} float32 + code-anchored table {config.CodebookSize:N0}×{info.NeighborsK} (int32 id + float32 distance) = {TokenizerCommand.Bytes(result.FixedBytes)}");
                if (options.Latents == LatentStorage.None)
                    Console.WriteLine($"  (latent-anchored SNCE would cost {info.SequenceLength * config.CodeDim * 2:N0} B/image with --latents full, {info.SequenceLength * Math.Max(1, info.NeighborsK) * 8:N0} B/image with --latents topk)");
            }
            return 0;
        });
        return cmd;
    }
}
