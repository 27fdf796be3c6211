using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Snce.Data;
using Snce.IO;
using Snce.Models;
using Snce.Sampling;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary><c>snce sample</c>: images (or token ids) from a trained generator, with guidance, labeled by class.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run folder (or its checkpoint/ folder) from 'snce train'.", Required = true, HelpName = "RUN" };
        var classes = new Option<string>("--class") { Description = "Class ids to sample, e.g. 3 or 0,1,2, or 'all' (round-robin over the list); 'none' = unconditional.", DefaultValueFactory = _ => "all", HelpName = "C" };
        var prompt = new Option<string[]>("--prompt") { Description = "Text-to-image: a caption to sample (repeat for several; --n images each, one grid row per prompt). Text-conditioned checkpoints only.", HelpName = "TEXT" };
        var n = new Option<int>("--n") { Description = "Number of images (with --prompt: per prompt).", DefaultValueFactory = _ => 64, HelpName = "N" };
        var cfg = new Option<double>("--cfg") { Description = "Classifier-free guidance scale in [0, 100] (1 = no guidance; 1.5–5 is usual).", DefaultValueFactory = _ => 2.0, HelpName = "S" };
        var cfgSchedule = CfgScheduleOption.Create();
        var steps = new Option<int>("--steps") { Description = "Masked generator: parallel decoding steps.", DefaultValueFactory = _ => 8, HelpName = "N" };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature (0 = greedy).", DefaultValueFactory = _ => 1.0, HelpName = "T" };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0 = all).", DefaultValueFactory = _ => 0, HelpName = "k" };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass (1 = all).", DefaultValueFactory = _ => 1.0, HelpName = "P" };
        var choice = new Option<double>("--choice-temperature") { Description = "Masked generator: Gumbel noise on the confidences, annealed to 0 (MaskGIT 4.5).", DefaultValueFactory = _ => 4.5, HelpName = "T" };
        var seed = new Option<long>("--seed") { Description = "Random seed: the same seed gives the same images.", DefaultValueFactory = _ => 0, HelpName = "S" };
        var batch = new Option<int>("--batch") { Description = "Images per forward batch.", DefaultValueFactory = _ => 64, HelpName = "B" };
        var weights = new Option<string>("--weights") { Description = "ema (default) or raw training weights.", DefaultValueFactory = _ => "ema", HelpName = "ema|raw" };
        var noCache = new Option<bool>("--no-kv-cache") { Description = "AR generator: recompute the whole prefix for every token (slow; for comparison)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder that decodes the tokens (default: the one the training shards name).", HelpName = "DIR" };
        var columns = new Option<int?>("--columns") { Description = "Images per grid row (default: √n).", HelpName = "N" };
        var singles = new Option<string?>("--singles") { Description = "Also write each image as its own PNG into this folder: the bare image at the data set's size (no grid gutter), ready for 'snce eval --images'.", HelpName = "DIR" };
        var output = new Option<string>("--out") { Description = "grid.png (decoded images; token ids go to grid.tokens.npy) or tokens.npy (token ids only). Class labels go to a JSON sidecar.", Required = true, HelpName = "FILE" };

        var cmd = new Command("sample", "Sample images from a trained generator (AR with a KV cache, or masked parallel decoding), with classifier-free guidance.");
        foreach (var o in new Option[] { checkpoint, classes, prompt, n, cfg, cfgSchedule, steps, temperature, topK, topP, choice, seed, batch, weights, noCache, tokenizer, columns, singles, output })
            cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var outPath = parse.GetValue(output)!;
            var ext = Path.GetExtension(outPath).ToLowerInvariant();
            if (ext is not (".png" or ".npy")) throw new ArgumentException($"--out must end in .png (images) or .npy (token ids), got '{outPath}'");
            var count = parse.GetValue(n);
            if (count < 1) throw new ArgumentException($"--n must be ≥ 1 (got {count})");
            var useEma = parse.GetValue(weights)!.ToLowerInvariant() switch
            {
                "ema" => true,
                "raw" => false,
                var w => throw new ArgumentException($"unknown --weights '{w}'; use ema or raw"),
            };
            Guidance.CheckScale(parse.GetValue(cfg));
            var manifest = GeneratorCheckpoint.ReadManifest(parse.GetValue(checkpoint)!);                 // fails clearly before any device work
            if (manifest.Model.Source is not null) throw new ArgumentException(Snce.Evaluation.CheckpointImageSource.PairedRunMessage(parse.GetValue(checkpoint)!));
            var prompts = parse.GetValue(prompt) ?? [];
            var text = manifest.Model.Text;
            if (prompts.Length > 0 && text is null)
                throw new ArgumentException($"--prompt needs a text-conditioned generator, but '{parse.GetValue(checkpoint)}' is class-conditional ({manifest.Model.NumClasses} classes); sample it with --class, or train one with 'snce train ar|mask --text'");
            if (text is not null && prompts.Length == 0)
                throw new ArgumentException($"'{parse.GetValue(checkpoint)}' is text-conditioned; give one or more --prompt \"a red apple\"");
            if (text is not null && parse.GetResult(classes) is { Implicit: false })
                throw new ArgumentException("--class applies to class-conditional generators; this one takes --prompt");
            var perPrompt = count;
            if (text is not null) count *= prompts.Length;
            var labels = text is null ? ParseClasses(parse.GetValue(classes)!, manifest.Model.NumClasses, count) : [.. Enumerable.Repeat(-1L, count)];
            var promptEmbeddings = text is null ? null : EmbedPrompts(prompts, text);
            var options = new GeneratorSamplingOptions(
                new TokenSamplingOptions(parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP)),
                parse.GetValue(cfg), parse.GetValue(steps), parse.GetValue(choice), manifest.Training.Objective.Schedule,
                KvCache: !parse.GetValue(noCache), BatchSize: parse.GetValue(batch), CfgSchedule: CfgScheduleOption.Parse(parse, cfgSchedule));
            options.Tokens.Validate();
            var dev = device.Resolve(parse);
            var tokenizerDir = parse.GetValue(tokenizer) ?? manifest.Data.Tokenizer;
            if (ext == ".png") Snce.Tokenizer.TokenizerCheckpoint.CheckIdentity(tokenizerDir, manifest.Data.TokenizerSha256, $"the generator in '{parse.GetValue(checkpoint)}'");
            ITokenDecoder? decoder = ext == ".png" ? LoadDecoder(tokenizerDir, manifest.Model, dev) : null;
            using (decoder)
            {
                if (decoder is not null && decoder.CodebookSize != manifest.Model.CodebookSize)
                    throw new ArgumentException($"codebook size mismatch: the tokenizer decodes K = {decoder.CodebookSize} codes, the generator predicts K = {manifest.Model.CodebookSize}");
                var (model, _) = GeneratorCheckpoint.LoadModel(parse.GetValue(checkpoint)!, dev, useEma);
                using (model)
                {
                    var clock = Stopwatch.StartNew();
                    using var g = new Generator((ulong)parse.GetValue(seed));
                    using var scope = NewDisposeScope();
                    var conditions = promptEmbeddings is null
                        ? tensor(labels)
                        : Text.TextConditions.Of([.. Enumerable.Range(0, count).Select(i => promptEmbeddings[i / perPrompt])], text!.MaxTokens, CPU);
                    var ids = GeneratorSampler.Sample(model, conditions, options, g);
                    var grid = ids.view(count, manifest.Model.GridHeight, manifest.Model.GridWidth).cpu();
                    var seconds = clock.Elapsed.TotalSeconds;
                    var names = labels.Select(l => l < 0 ? "unconditional" : manifest.Data.Classes.ElementAtOrDefault((int)l) ?? l.ToString()).ToArray();
                    var captions = text is null
                        ? labels.Select((l, i) => $"{names[i]} (class {l})").ToArray()
                        : [.. Enumerable.Range(0, count).Select(i => prompts[i / perPrompt])];
                    // Decode before writing anything: a decoder that yields NaN/Inf fails here and leaves no partial output.
                    var images = decoder?.Decode(grid.to(dev)).cpu();
                    var basePath = Path.ChangeExtension(outPath, null);
                    var tokensPath = ext == ".npy" ? outPath : basePath + ".tokens.npy";
                    Npy.Save(tokensPath, grid.to_type(ScalarType.Int32));
                    AtomicFile.WriteAllText(basePath + ".labels.json", JsonSerializer.Serialize(new
                    {
                        checkpoint = Path.GetFullPath(parse.GetValue(checkpoint)!), tokens = Path.GetFileName(tokensPath),
                        seed = parse.GetValue(seed), cfg = options.CfgScale, cfg_schedule = options.CfgSchedule.Name(), steps = manifest.Model.Kind == GeneratorKind.Masked ? options.Steps : (int?)null,
                        weights = useEma ? "ema" : "raw", labels = text is null ? labels : null, names = text is null ? names : null,
                        prompts = text is null ? null : prompts,
                    }, Json.Options));
                    if (images is not null)
                    {
                        var gridColumns = parse.GetValue(columns) ?? (text is null ? (int)Math.Ceiling(Math.Sqrt(count)) : perPrompt);
                        // One prompt per row (the default layout): draw it above its row.
                        ImageGrid.SavePng(outPath, images, gridColumns, captions, text is not null && gridColumns == perPrompt ? prompts : null);
                        if (parse.GetValue(singles) is { } dir)
                        {
                            Directory.CreateDirectory(dir);
                            for (var i = 0; i < count; i++)                    // the bare image, at the data set's size (no grid gutter)
                                ImageGrid.SaveSinglePng(Path.Combine(dir, $"{i:D4}_class{labels[i]}.png"), images[i]);
                        }
                    }
                    Console.WriteLine($"sampled {count} images ({manifest.Model.Kind.Name()}, cfg {options.CfgScale} {options.CfgSchedule.Name()}, seed {parse.GetValue(seed)}) in {seconds:F1} s " +
                        $"({count / seconds:F2} images/s); wrote {(decoder is null ? tokensPath : $"{outPath} and {tokensPath}")}, labels in {basePath}.labels.json");
                }
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>The prompts through the checkpoint's text encoder (cached on disk); warns about truncated prompts.</summary>
    internal static Text.TextEmbedding[] EmbedPrompts(string[] prompts, TextConditioningConfig text)
    {
        if (text.Encoder != Text.MiniLmEncoder.ModelId)
            throw new ArgumentException($"the generator was trained on captions encoded by {text.Encoder}, but this snce has {Text.MiniLmEncoder.ModelId}");
        using var cache = new Text.TextEmbeddingCache();
        var embedded = cache.Get(prompts);
        for (var i = 0; i < prompts.Length; i++)
            if (embedded[i].Truncated || embedded[i].Length > text.MaxTokens)
                Console.Error.WriteLine($"snce: warning: the prompt \"{prompts[i]}\" has {embedded[i].PromptTokens} word pieces; the generator reads only the first {text.MaxTokens} ([CLS] and [SEP] included)");
        return embedded;
    }

    /// <summary>"all" | "none" | "3" | "0,1,2" → n labels, round-robin; −1 = unconditional.</summary>
    public static long[] ParseClasses(string text, int numClasses, int n)
    {
        long[] list;
        var t = text.Trim().ToLowerInvariant();
        if (t == "none") list = [-1];
        else if (t == "all") list = numClasses == 0 ? [-1] : Enumerable.Range(0, numClasses).Select(i => (long)i).ToArray();
        else
        {
            list = t.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s =>
                long.TryParse(s, out var v) ? v : throw new ArgumentException($"cannot read class '{s}' in --class {text}; use ids like 3 or 0,1,2, 'all' or 'none'")).ToArray();
            foreach (var c in list)
                if (c < 0 || c >= numClasses)
                    throw new ArgumentException(numClasses == 0
                        ? $"this generator is unconditional (trained without classes); use --class none"
                        : $"class {c} is out of range: the generator knows classes 0..{numClasses - 1}");
        }
        return Enumerable.Range(0, n).Select(i => list[i % list.Length]).ToArray();
    }

    /// <summary>The tokenizer's decoder; its grid must be the generator's.</summary>
    static ITokenDecoder LoadDecoder(string tokenizerDir, GeneratorConfig model, Device device)
    {
        var decoder = new TokenizerDecoder(tokenizerDir, device);
        if (decoder.GridSize != model.GridHeight || decoder.GridSize != model.GridWidth)
        {
            decoder.Dispose();
            throw new ArgumentException($"token grid mismatch: the tokenizer '{tokenizerDir}' decodes {decoder.GridSize}x{decoder.GridSize} tokens, the generator makes {model.GridHeight}x{model.GridWidth}");
        }
        return decoder;
    }
}
