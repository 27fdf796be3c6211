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
        var text = new Option<bool>("--text") { Description = "Also store captions and their MiniLM embeddings (captions.json, text_*.npy) for 'snce train ar|mask --text': emoji get templated captions, an image folder needs a captions.jsonl. " +
            "With --pairs: each pair's instruction (emoji vendors: \"in google style\"; skin tones: \"make the skin tone dark\"; a folder: its instructions.jsonl)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the files of a non-empty --out folder (runs trained on the old shards then no longer match them)." };
        var pairs = new Option<string?>("--pairs") { Description = $"Paired data instead of --data, for image-to-image training ('snce train ar|mask' on the result): {Snce.Editing.PairedData.Syntax}. The targets are tokenized as --data would be (latents, neighbor table), the sources' tokens go to source_tokens.npy; --limit keeps the first N pairs of each split.", HelpName = "SRC:DST|DIR" };
        latents.AcceptOnlyFromAmong("none", "full", "topk");
        data.Data.Required = false;                                                      // --data or --pairs, checked below
        data.Data.Description = "Give this or --pairs. " + data.Data.Description;

        var cmd = new Command("tokenize", "Tokenize a data set (both splits) into token shards: tokens, labels, split, codebook, the code-anchored neighbor table and optional latents or their top-k code neighbors. " +
            "With --pairs: paired shards (source and target tokens per pair) for image-to-image generators.");
        cmd.Options.Add(tokenizer);
        data.AddTo(cmd);
        cmd.Options.Add(pairs);
        foreach (var o in new Option[] { output, neighbors, latents, batch, text, overwrite, json }) cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(tokenizer)!;
            var outDir = parse.GetValue(output)!;
            var pairSpec = parse.GetValue(pairs);
            if ((pairSpec is null) == (parse.GetValue(data.Data) is null))
                throw new ArgumentException(pairSpec is null ? "give the images: --data NAME|DIR, or --pairs SRC:DST|DIR for paired shards" : "give --data or --pairs, not both");
            if (pairSpec is not null) Snce.Editing.PairedData.Reference(pairSpec);           // a mistyped spec fails before any work
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
            if (pairSpec is not null) return TokenizePairs(model, config, dir, pairSpec, data, parse, options, outDir, parse.GetValue(json), dev, text);
            using var dataset = TokenizerCommand.LoadDataFor(data, parse, parse.GetValue(data.Data)!, config);
            var captionSet = parse.GetValue(text) ? Text.CaptionSet.From(dataset) : null;        // no captions: fail before tokenizing
            var result = DatasetTokenizer.Tokenize(model, dataset, TokenizerCheckpoint.Resolve(dir), options,
                TokenizerTrainCommand.DataReference(parse.GetValue(data.Data)!));
            using var shards = result.Shards;
            shards.Save(outDir);
            var info = shards.Info;
            if (captionSet is not null) SaveCaptions(captionSet, outDir, parse.GetValue(json));
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

    static int TokenizePairs(VqTokenizer model, TokenizerConfig config, string dir, string spec, DataOptionsCli data, ParseResult parse,
        TokenizeOptions options, string outDir, bool json, TorchSharp.torch.Device dev, Option<bool> text)
    {
        if (parse.GetValue(data.Size) is { } s && s != config.ImageSize || parse.GetValue(data.Channels) is { } c && c != config.Channels)
            throw new ArgumentException($"--pairs loads images at the tokenizer's own size and channels ({config.ImageSize} px, {config.Channels}); leave out --size and --channels");
        if (parse.GetValue(data.Vendor) is not null) throw new ArgumentException("--vendor does not apply to --pairs; name both vendors, e.g. --pairs emoji-twitter:emoji-google");
        var reference = Snce.Editing.PairedData.Reference(spec);
        Snce.Editing.ImagePairs pairs;
        using (var progress = new DataProgressBar()) pairs = Snce.Editing.PairedData.Load(spec, data.ToOptions(parse), config.Channels, config.ImageSize, progress);
        using var limited = Snce.Editing.PairedData.Limit(pairs, parse.GetValue(data.Limit));
        var instructions = parse.GetValue(text) ? Snce.Editing.PairInstructions.Of(limited, reference) : null;   // none for some pair: fail before tokenizing
        var result = Snce.Editing.PairedData.Tokenize(model, limited, TokenizerCheckpoint.Resolve(dir), options, reference);
        using var shards = result.Shards;
        shards.Save(outDir);
        if (instructions is not null) SaveCaptions(instructions, outDir, json);
        else File.Delete(Path.Combine(outDir, Text.CaptionShards.InfoFile));                    // --overwrite: no stale instructions of earlier shards
        var info = shards.Info;
        using var held = shards.IndicesOf(Snce.Data.TokenShards.ValidationSplit);
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                out_dir = Path.GetFullPath(outDir), pairs = reference, pair_count = info.Count, held_out = held.shape[0], tokens_per_image = info.SequenceLength,
                codebook_size = info.CodebookSize, latents = info.Latents, neighbors_k = info.NeighborsK, bytes_per_image = info.BytesPerImage,
                seconds = result.Seconds, tokens_per_second = result.TokensPerSecond,
                instructions = instructions?.Train.Select(t => t[0]).Distinct().Count(),
            }, Json.Options));
        else
            Console.WriteLine($"tokenized {info.Count:N0} pairs of {reference} ({held.shape[0]:N0} held out; {info.Grid[0]}×{info.Grid[1]} tokens per image, source and target) " +
                $"in {result.Seconds:F1} s on {dev} → {outDir}");
        return 0;
    }

    static void SaveCaptions(Text.CaptionSet set, string outDir, bool quiet)
    {
        using var cache = new Text.TextEmbeddingCache();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var captions = Text.CaptionShards.Build(set, cache);
        captions.Save(outDir);
        var i = captions.Info;
        if (i.Truncated > 0)
            Console.Error.WriteLine($"snce: warning: {i.Truncated} caption(s) have more than {i.MaxTokens} word pieces; the encoder read only the first {i.MaxTokens}");
        if (!quiet)
            Console.WriteLine($"  captions: {i.Captions.Length:N0} unique ({i.Source}; {i.Train.Sum(t => t.Length):N0} training, {i.HeldOut.Sum(t => t.Length):N0} held-out phrasings), " +
                $"{cache.Encoded:N0} encoded with {i.Encoder} in {clock.Elapsed.TotalSeconds:F1} s, the rest from {cache.Folder}");
    }
}
