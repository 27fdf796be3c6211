using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Snce.Data;
using Snce.Editing;
using Snce.Evaluation;
using Snce.IO;
using Snce.Models;
using Snce.Sampling;
using Snce.Tokenizer;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce edit</c>: inpainting and outpainting with a trained generator. The region (mask, box or border band) is mapped to
/// the token grid, its tokens are regenerated, every other token is kept exactly, and the result is decoded. With a paired
/// (image-to-image) run it translates the whole image instead: the source's tokens condition the generator, no region.
/// </summary>
public static class EditCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run folder (or its checkpoint/ folder) from 'snce train'.", Required = true, HelpName = "RUN" };
        var image = new Option<string>("--image") { Description = "The image to edit, or the source image of a paired run (PNG, JPEG, ...): the tokenizer's size and channels, or any image with --fit.", Required = true, HelpName = "FILE" };
        var mask = new Option<string?>("--mask") { Description = $"Region as a mask image of the input's size: pixels of gray value ≥ {EditImages.MaskThreshold} (white; transparent reads as white) are regenerated.", HelpName = "FILE" };
        var box = new Option<string?>("--box") { Description = "Region as a pixel box x,y,w,h (origin top left), inside the image.", HelpName = "x,y,w,h" };
        var outpaint = new Option<string?>("--outpaint") { Description = "Region as the band along one border (outpainting): the generator continues the rest of the image into it.", HelpName = "left|right|top|bottom" };
        var fraction = new Option<double>("--outpaint-fraction") { Description = "With --outpaint: the band's share of the image's width (left/right) or height (top/bottom).", DefaultValueFactory = _ => 0.5, HelpName = "F" };
        var classes = new Option<string>("--class") { Description = "Class of the results: an id like 3, a list 0,1,2 (round-robin over the results), or 'none' (unconditional).", DefaultValueFactory = _ => "none", HelpName = "C" };
        var prompt = new Option<string?>("--prompt") { Description = "The instruction of a paired run trained with instructions ('snce train ... --text' on 'snce tokenize --pairs ... --text' shards), e.g. \"make the skin tone dark\"; " +
            "default: the run's only instruction when it was trained on one. With a text-to-image run: the caption the region is regenerated under.", HelpName = "TEXT" };
        var n = new Option<int>("--n") { Description = "Number of results (each an independent draw of the region).", DefaultValueFactory = _ => 4, HelpName = "N" };
        var cfg = new Option<double>("--cfg") { Description = "Classifier-free guidance scale in [0, 100] (1 = no guidance; with --class none guidance changes nothing).", DefaultValueFactory = _ => 2.0, HelpName = "S" };
        var cfgSchedule = CfgScheduleOption.Create();
        var steps = new Option<int>("--steps") { Description = "Masked generator: parallel decoding steps (the schedule starts at the region's masked fraction).", DefaultValueFactory = _ => 8, HelpName = "N" };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature (0 = greedy).", DefaultValueFactory = _ => 1.0, HelpName = "T" };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0 = all).", DefaultValueFactory = _ => 0, HelpName = "k" };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass (1 = all).", DefaultValueFactory = _ => 1.0, HelpName = "P" };
        var choice = new Option<double>("--choice-temperature") { Description = "Masked generator: Gumbel noise on the confidences, annealed to 0 (MaskGIT 4.5).", DefaultValueFactory = _ => 4.5, HelpName = "T" };
        var seed = new Option<long>("--seed") { Description = "Random seed: the same seed gives the same results.", DefaultValueFactory = _ => 0, HelpName = "S" };
        var weights = new Option<string>("--weights") { Description = "ema (default) or raw training weights.", DefaultValueFactory = _ => "ema", HelpName = "ema|raw" };
        weights.AcceptOnlyFromAmong("ema", "raw");
        var noCache = new Option<bool>("--no-kv-cache") { Description = "AR generator: recompute the whole prefix for every token (slow; for comparison)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: the one the run was trained on).", HelpName = "DIR" };
        var fit = new Option<bool>("--fit") { Description = "Convert the image (and mask) to the tokenizer's channels and center-crop and resize them to its size, instead of failing on a mismatch." };
        var json = new Option<bool>("--json") { Description = "Print what was kept and changed as one JSON object." };
        var output = new Option<string>("--out") { Description = "PNG: the input, the input with the regenerated pixels tinted (not for a paired run), then the N results, side by side (token ids go to NAME.tokens.npy, captions to NAME.captions.json).", Required = true, HelpName = "FILE" };

        var cmd = new Command("edit",
            "Inpaint or outpaint an image with a trained generator: the region's tokens are regenerated (a token is regenerated when its pixel footprint " +
            "overlaps the region), every other token is kept exactly. Masked generators decode the region in parallel; AR generators decode in raster order " +
            "from the region's first token with the kept tokens forced. A paired run (trained on 'snce tokenize --pairs' shards) takes no region: " +
            "it translates the whole source image (e.g. twitter → google emoji) and writes the source and the N results side by side; " +
            "a paired run trained with instructions ('--text') takes the edit to make with --prompt (\"make the skin tone dark\").");
        foreach (var o in new Option[] { checkpoint, image, mask, box, outpaint, fraction, classes, prompt, n, cfg, cfgSchedule, steps, temperature, topK, topP, choice, seed, weights, noCache, tokenizer, fit, json, output })
            cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var outPath = parse.GetValue(output)!;
            if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new SnceUserException($"--out must be a .png file, got '{outPath}'");
            var count = parse.GetValue(n);
            if (count < 1) throw new SnceUserException($"--n must be ≥ 1 (got {count})");
            Snce.Sampling.Guidance.CheckScale(parse.GetValue(cfg));
            var given = new[] { parse.GetValue(mask) is not null, parse.GetValue(box) is not null, parse.GetValue(outpaint) is not null }.Count(b => b);
            var manifest = GeneratorCheckpoint.ReadManifest(parse.GetValue(checkpoint)!);                 // fails clearly before any device work
            if (manifest.Model.Source is not null)
            {
                if (given != 0) throw new SnceUserException($"{parse.GetValue(checkpoint)} is a paired (image-to-image) run: it translates the whole source image; leave out --mask, --box and --outpaint (inpainting needs a class- or text-conditional run)");
                if (parse.GetResult(classes) is { Implicit: false }) throw new SnceUserException($"{parse.GetValue(checkpoint)} is a paired run conditioned on the source image only; leave out --class");
                return Translate(parse, manifest, device);
            }
            if (given != 1) throw new SnceUserException("give exactly one region: --mask FILE, --box x,y,w,h or --outpaint left|right|top|bottom");
            var text = manifest.Model.Text;
            if (text is null && parse.GetValue(prompt) is not null)
                throw new SnceUserException($"'{parse.GetValue(checkpoint)}' has no text conditioning ({manifest.Model.Conditioning}-conditional), so it takes no --prompt; give --class, or use a run trained with --text");
            if (text is not null && parse.GetValue(prompt) is null)
                throw new SnceUserException($"'{parse.GetValue(checkpoint)}' is a text-to-image run; give the caption to regenerate the region under with --prompt \"a red apple\"");
            if (text is not null && parse.GetResult(classes) is { Implicit: false })
                throw new SnceUserException("--class applies to class-conditional generators; this one takes --prompt");
            var labels = text is null ? SampleCommand.ParseClasses(parse.GetValue(classes)!, manifest.Model.NumClasses, count) : [.. Enumerable.Repeat(-1L, count)];
            var promptEmbedding = text is null ? null : SampleCommand.EmbedPrompts([parse.GetValue(prompt)!], text)[0];
            var options = SamplingOptions(parse, manifest);
            var tokenizerDir = parse.GetValue(tokenizer) ?? manifest.Data.Tokenizer;
            var dev = device.Resolve(parse);                                                            // before the first tensor: it picks the libtorch
            var tokenizerConfig = TokenizerCheckpoint.LoadConfig(tokenizerDir);
            var (source, maskPixels) = EditImages.Load(parse.GetValue(image)!, parse.GetValue(mask), tokenizerConfig.Channels, tokenizerConfig.ImageSize, parse.GetValue(fit));
            using var sourceImage = source;
            var region = RegionFrom(parse.GetValue(box), parse.GetValue(outpaint), parse.GetValue(fraction), maskPixels);
            var size = tokenizerConfig.ImageSize;
            var pixels = region.ToPixels(size, size);
            var footprint = TokenFootprint.Of(tokenizerConfig);
            var tokens = footprint.ToTokens(pixels).RequireEdit();

            using var editor = new CheckpointEditor(parse.GetValue(checkpoint)!, dev, parse.GetValue(weights) == "ema", tokenizerDir);
            var model = editor.Model;
            var clock = Stopwatch.StartNew();
            using var g = new Generator((ulong)parse.GetValue(seed));
            using var scope = NewDisposeScope();
            var inputs = sourceImage.unsqueeze(0).expand(count, -1, -1, -1).contiguous();
            var conditions = promptEmbedding is null ? tensor(labels) : Text.TextConditions.Of([.. Enumerable.Repeat(promptEmbedding, count)], text!.MaxTokens, CPU);
            using var result = editor.Inpaint(inputs, tokens, conditions, options, g);
            var seconds = clock.Elapsed.TotalSeconds;
            var outside = result.ChangedOutside();
            if (outside != 0) throw new InvalidOperationException($"internal error: {outside} tokens outside the region changed");
            var inside = result.ChangedInside().data<long>().ToArray();
            var psnr = InpaintingQuality.Psnr(result.Images, inputs, pixels).data<float>().ToArray();
            var l1 = InpaintingQuality.L1(result.Images, inputs, pixels).data<float>().ToArray();

            var names = labels.Select(l => text is not null ? parse.GetValue(prompt)! : l < 0 ? "unconditional" : manifest.Data.Classes.ElementAtOrDefault((int)l) ?? l.ToString()).ToArray();
            var captions = new[] { "input", $"region: {tokens.Count} of {tokens.Length} tokens regenerated" }
                .Concat(labels.Select((l, i) => $"result {i + 1}: {names[i]} (class {l}), {inside[i]} tokens changed")).ToArray();
            ImageGrid.SavePng(outPath, EditImages.Panel(sourceImage, footprint.ToPixels(tokens), result.Images), count + 2, captions);
            var tokensPath = Path.ChangeExtension(outPath, null) + ".tokens.npy";
            Npy.Save(tokensPath, cat([result.SourceTokens.narrow(0, 0, 1), result.Tokens], 0)
                .view(count + 1, model.Config.GridHeight, model.Config.GridWidth).to_type(ScalarType.Int32));

            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    checkpoint = Path.GetFullPath(parse.GetValue(checkpoint)!), image = Path.GetFullPath(parse.GetValue(image)!),
                    generator = manifest.Model.Kind.Name(), region = EditRegionCli.Describe(region),
                    region_pixels = pixels.Count, image_size = size,
                    grid = new[] { tokens.GridHeight, tokens.GridWidth },
                    token_stride = footprint.Stride, token_pad = footprint.Pad,
                    tokens_total = tokens.Length, tokens_regenerated = tokens.Count, tokens_kept = tokens.Length - tokens.Count,
                    regenerated = Enumerable.Range(0, tokens.Length).Where(i => tokens.Editable[i]).Select(i => new[] { i / tokens.GridWidth, i % tokens.GridWidth }),
                    tokens_changed_outside = outside,
                    results = labels.Select((l, i) => new { index = i, @class = l, name = names[i], tokens_changed_inside = inside[i], psnr_in_region = Math.Round(psnr[i], 3), l1_in_region = Math.Round(l1[i], 5) }),
                    seed = parse.GetValue(seed), cfg = options.CfgScale, cfg_schedule = options.CfgSchedule.Name(), steps = manifest.Model.Kind == GeneratorKind.Masked ? options.Steps : (int?)null,
                    weights = parse.GetValue(weights), seconds = Math.Round(seconds, 3),
                    @out = Path.GetFullPath(outPath), tokens = Path.GetFullPath(tokensPath),
                    rows_of_tokens = "row 0 = the source's tokens, rows 1..n = the results",
                }, Json.Options));
            else
                Console.WriteLine($"edited {count} result(s) ({manifest.Model.Kind.Name()}, seed {parse.GetValue(seed)}) in {seconds:F1} s: " +
                    $"{tokens.Count} of {tokens.Length} tokens regenerated, {tokens.Length - tokens.Count} kept exactly (0 changed); wrote {outPath} and {tokensPath}");
            return 0;
        });
        return cmd;

        // The sampling options of both paths (inpainting and paired translation), validated.
        GeneratorSamplingOptions SamplingOptions(ParseResult parse, CheckpointManifest manifest)
        {
            var options = new GeneratorSamplingOptions(
                new TokenSamplingOptions(parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP)),
                parse.GetValue(cfg), parse.GetValue(steps), parse.GetValue(choice), manifest.Training.Objective.Schedule, KvCache: !parse.GetValue(noCache),
                CfgSchedule: CfgScheduleOption.Parse(parse, cfgSchedule));
            options.Tokens.Validate();
            return options;
        }

        int Translate(ParseResult parse, CheckpointManifest manifest, DeviceOptions device)
        {
            var (outPath, count, run) = (parse.GetValue(output)!, parse.GetValue(n), parse.GetValue(checkpoint)!);
            var options = SamplingOptions(parse, manifest);
            var (instruction, defaulted) = Instruction(parse.GetValue(prompt), manifest, run);
            var instructionEmbedding = instruction is null ? null : SampleCommand.EmbedPrompts([instruction], manifest.Model.Text!)[0];
            var tokenizerDir = parse.GetValue(tokenizer) ?? manifest.Data.Tokenizer;
            var dev = device.Resolve(parse);
            var tc = TokenizerCheckpoint.LoadConfig(tokenizerDir);
            var (source, _) = EditImages.Load(parse.GetValue(image)!, null, tc.Channels, tc.ImageSize, parse.GetValue(fit));
            using var sourceImage = source;
            using var editor = new CheckpointEditor(run, dev, parse.GetValue(weights) == "ema", tokenizerDir);
            var clock = Stopwatch.StartNew();
            using var g = new Generator((ulong)parse.GetValue(seed));
            using var scope = NewDisposeScope();
            var instructions = instructionEmbedding is null ? null : Text.TextConditions.Of([.. Enumerable.Repeat(instructionEmbedding, count)], manifest.Model.Text!.MaxTokens, CPU);
            using var result = editor.Translate(sourceImage.unsqueeze(0).expand(count, -1, -1, -1).contiguous(), options, g, instructions);
            var seconds = clock.Elapsed.TotalSeconds;
            var same = (result.Tokens == result.SourceTokens).sum(1).data<long>().ToArray();
            var t = manifest.Model.SequenceLength;
            var captions = new[] { instruction is null ? "source" : $"source; \"{instruction}\"" }.Concat(same.Select((k, i) => $"result {i + 1}: {t - k} of {t} tokens differ from the source's")).ToArray();
            ImageGrid.SavePng(outPath, EditImages.Row(sourceImage, result.Images), count + 1, captions);
            var tokensPath = Path.ChangeExtension(outPath, null) + ".tokens.npy";
            Npy.Save(tokensPath, cat([result.SourceTokens.narrow(0, 0, 1), result.Tokens], 0)
                .view(count + 1, manifest.Model.GridHeight, manifest.Model.GridWidth).to_type(ScalarType.Int32));
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    checkpoint = Path.GetFullPath(run), image = Path.GetFullPath(parse.GetValue(image)!), generator = manifest.Model.Kind.Name(),
                    conditioning = manifest.Model.Conditioning, pairs = manifest.Data.Pairs, instruction, instruction_defaulted = instruction is null ? (bool?)null : defaulted,
                    image_size = tc.ImageSize,
                    grid = new[] { manifest.Model.GridHeight, manifest.Model.GridWidth }, tokens_total = t,
                    results = same.Select((k, i) => new { index = i, tokens_same_as_source = k, tokens_changed = t - k }),
                    seed = parse.GetValue(seed), cfg = options.CfgScale, steps = manifest.Model.Kind == GeneratorKind.Masked ? options.Steps : (int?)null,
                    weights = parse.GetValue(weights), seconds = Math.Round(seconds, 3),
                    @out = Path.GetFullPath(outPath), tokens = Path.GetFullPath(tokensPath),
                    rows_of_tokens = "row 0 = the source's tokens, rows 1..n = the results",
                }, Json.Options));
            else
                Console.WriteLine($"translated {parse.GetValue(image)}{(instruction is null ? "" : $" under \"{instruction}\"{(defaulted ? " (the run's only instruction)" : "")}")} into {count} result(s) ({manifest.Model.Kind.Name()}, {manifest.Data.Pairs ?? "paired"}, seed {parse.GetValue(seed)}) in {seconds:F1} s; wrote {outPath} and {tokensPath}");
            return 0;
        }
    }

    /// <summary>
    /// The instruction of a paired translation: none for a run without text conditioning (a given --prompt is an error naming the fix);
    /// for a run trained with instructions, --prompt, else the run's only instruction (read from its shards' captions), else an error
    /// listing what it was trained on.
    /// </summary>
    static (string? Instruction, bool Defaulted) Instruction(string? prompt, CheckpointManifest manifest, string run)
    {
        if (manifest.Model.Text is null)
            return prompt is null ? (null, false)
                : throw new SnceUserException($"'{run}' is a paired run conditioned on the source image only (no text conditioning: it was trained without instructions), so it takes no --prompt; " +
                    "leave it out, or train on instructions: 'snce tokenize --pairs ... --text', then 'snce train ar|mask --tokens PAIRS --text'");
        if (prompt is not null) return (prompt, false);
        string[] trained;
        try
        {
            trained = Text.CaptionShards.ReadInfo(manifest.Data.Tokens).Captions;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new SnceUserException($"'{run}' was trained with instructions; give one with --prompt \"TEXT\" (its shards' instructions in '{manifest.Data.Tokens}' could not be read: {e.Message})");
        }
        if (trained.Length == 1) return (trained[0], true);
        throw new SnceUserException($"'{run}' was trained with {trained.Length} instructions; say which with --prompt, e.g. " +
            string.Join(", ", trained.Take(5).Select(t => $"--prompt \"{t}\"")) + (trained.Length > 5 ? ", ..." : ""));
    }

    /// <summary>The one region given on the command line.</summary>
    static EditRegion RegionFrom(string? box, string? side, double fraction, PixelMask? mask)
    {
        if (mask is not null) return new EditRegion.Mask(mask);
        if (side is not null) return new EditRegion.Outpaint(OutpaintSides.Parse(side), fraction);
        return EditRegionCli.ParseBox(box!);
    }
}
