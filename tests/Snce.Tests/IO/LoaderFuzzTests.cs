using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Snce.Data;
using Snce.IO;
using Snce.Losses;
using Snce.Models;
using Snce.Tests.Support;
using Snce.Tokenizer;
using Snce.Training;
using StbImageWriteSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Snce.Tests.IO;

/// <summary>
/// Issue #17's fuzz run: seeded mutations of valid PNG, .npy, safetensors and JSON files (shards.json, checkpoint.json,
/// tokenizer config.json, a captioned folder's captions.jsonl, caption shards' captions.json and text arrays) through the
/// real loaders. Every input must load or fail with <see cref="InvalidDataException"/> (the loaders' "damaged file"
/// error, which the CLI prints as one line; for captions.jsonl also <see cref="FileNotFoundException"/>, a line naming an
/// image that is not there): any other exception fails the test, and a native abort would end the test process. CI runs <see cref="CiInputs"/> inputs; set SNCE_FUZZ_INPUTS for a longer
/// run (and SNCE_FUZZ_SEED for another sequence).
/// </summary>
public class LoaderFuzzTests(ITestOutputHelper output)
{
    const int CiInputs = 12000;

    sealed record Target(string Name, byte[] Seed, Action<byte[]> Load, bool Json, bool MissingFileIsExpected = false);

    [Fact]
    public void MutatedFilesLoadOrFailWithTheProjectsError()
    {
        var inputs = int.TryParse(Environment.GetEnvironmentVariable("SNCE_FUZZ_INPUTS"), out var n) ? n : CiInputs;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("SNCE_FUZZ_SEED"), out var s) ? s : 17;
        using var dir = new TempDir();
        var targets = Targets(dir);
        foreach (var t in targets) t.Load(t.Seed);                    // every seed is valid: the fuzzer starts from good files

        var rng = new Random(seed);
        var (loaded, refused) = (new int[targets.Count], new int[targets.Count]);
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < inputs; i++)
        {
            var k = i % targets.Count;
            var target = targets[k];
            var input = Mutate(target.Seed, target.Json, rng);
            try
            {
                target.Load(input);
                loaded[k]++;
            }
            catch (Exception e) when (e is InvalidDataException || (target.MissingFileIsExpected && e is FileNotFoundException))
            {
                refused[k]++;
            }
            catch (Exception e)
            {
                if (failures.Count < 20)
                {
                    failures.Add($"#{i} {target.Name}: {e.GetType().Name}: {e.Message.Split('\n')[0]}\n{e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}");
                }
                else failures.Add("");
            }
        }
        var seconds = clock.Elapsed.TotalSeconds;
        var report = $"{inputs:N0} inputs (seed {seed}) in {seconds:F1} s ({inputs / seconds:N0}/s): " +
            string.Join("; ", targets.Select((t, j) => $"{t.Name} {loaded[j]:N0} loaded / {refused[j]:N0} refused"));
        output.WriteLine(report);
        if (Environment.GetEnvironmentVariable("SNCE_FUZZ_REPORT") is { Length: > 0 } path)
            File.WriteAllText(path, report + $"\nunexpected exceptions: {failures.Count}\n" + string.Join("\n", failures.Where(f => f.Length > 0)) + "\n");
        Assert.True(failures.Count == 0, $"{failures.Count} inputs threw something other than InvalidDataException:\n{string.Join("\n", failures.Where(f => f.Length > 0))}");
    }

    /// <summary>The loaders under test, each with one valid seed file.</summary>
    static List<Target> Targets(TempDir dir)
    {
        var targets = new List<Target>();
        void Add(string name, byte[] seed, Action<string> load, bool json = false)
        {
            var path = dir[name];
            targets.Add(new Target(name, seed, bytes => { File.WriteAllBytes(path, bytes); load(path); }, json));
        }
        using var scope = NewDisposeScope();

        // .npy: every dtype the loader reads, several ranks.
        foreach (var (t, name) in new[] { (randn(3, 5), "f32.npy"), (arange(24).view(2, 3, 4), "i64.npy"), (randint(0, 255, [7]).to(ScalarType.Byte), "u8.npy"),
                     (randn(4).to(ScalarType.Float16), "f16.npy"), (tensor(3.5), "scalar.npy") })
        {
            Npy.Save(dir[name], t);
            Add(name, File.ReadAllBytes(dir[name]), p => Npy.Load(p).Dispose());
        }

        // safetensors: several tensors and metadata.
        Safetensors.Save(dir["seed.safetensors"], new Dictionary<string, Tensor> { ["w"] = randn(4, 3), ["b"] = arange(3).to(ScalarType.Int32), ["h"] = randn(2).to(ScalarType.BFloat16) },
            new Dictionary<string, string> { ["format"] = "snce-tokenizer/1", ["step"] = "3" });
        Add("m.safetensors", File.ReadAllBytes(dir["seed.safetensors"]), p =>
        {
            var (tensors, _) = Safetensors.Load(p);
            foreach (var t in tensors.Values) t.Dispose();
        });

        // PNG: gray (MNIST-like), RGB and RGBA, through the decoder the data loaders use.
        var rnd = new Random(3);
        foreach (var (c, comp, name) in new[] { (1, ColorComponents.Grey, "gray.png"), (3, ColorComponents.RedGreenBlue, "rgb.png"), (4, ColorComponents.RedGreenBlueAlpha, "rgba.png") })
        {
            var px = new byte[20 * 12 * c];
            rnd.NextBytes(px);
            using var ms = new MemoryStream();
            new ImageWriter().WritePng(px, 20, 12, comp, ms);
            var bytes = ms.ToArray();
            targets.Add(new Target(name, bytes, b => ImageFiles.Decode(b, name), Json: false));
        }

        // shards.json (with valid .npy parts next to it), checkpoint.json, a tokenizer's config.json.
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var shardsJson = Path.Combine(dir["tokens"], TokenShards.InfoFile);
        targets.Add(new Target("shards.json", File.ReadAllBytes(shardsJson), b => { File.WriteAllBytes(shardsJson, b); TokenShards.Load(dir["tokens"]).Dispose(); }, Json: true));

        var manifest = new CheckpointManifest
        {
            Model = GeneratorFixtures.Config(GeneratorKind.Masked), Training = GeneratorFixtures.Training(), Loss = new ResolvedLoss { Kind = LossKind.Snce, Anchor = NeighborAnchor.Latent, Tau = 0.5 },
            Data = new GeneratorDataInfo { Tokens = "/t", Tokenizer = "/k", Metric = "l2", CodeDim = 4, Classes = ["a", "b"], ImageSize = 16, Channels = 1, TokenizerSha256 = "ab" },
            State = new TrainerState { Step = 5, Epoch = 1, Position = 2, ElapsedSeconds = 1.5 },
        };
        var ckpt = Path.Combine(dir["run"], "checkpoint");
        Directory.CreateDirectory(ckpt);
        var ckptJson = Path.Combine(ckpt, GeneratorCheckpoint.ManifestFile);
        targets.Add(new Target("checkpoint.json", Encoding.UTF8.GetBytes(JsonSerializer.Serialize(manifest, GeneratorCheckpoint.JsonOptions)),
            b => { File.WriteAllBytes(ckptJson, b); GeneratorCheckpoint.ReadManifest(dir["run"]); }, Json: true));

        var config = new TokenizerConfig { ImageSize = 16, Channels = 1, BaseChannels = 8, ChannelMultipliers = [1, 2, 2], NormGroups = 4, CodeDim = 4, CodebookSize = 16 }.Validate();
        targets.Add(new Target("config.json", Encoding.UTF8.GetBytes(config.ToJson()), b => TokenizerConfig.FromJson(Encoding.UTF8.GetString(b), "config.json"), Json: true));

        // A tokenizer checkpoint's training.json (what 'tokenizer train --resume' and the study read).
        Directory.CreateDirectory(dir["tok"]);
        File.WriteAllText(Path.Combine(dir["tok"], TokenizerCheckpoint.ConfigFile), config.ToJson());
        var trainingJson = Path.Combine(dir["tok"], TokenizerCheckpoint.StateFile);
        var state = new TokenizerTrainingState { Step = 40, Options = new TokenizerTrainOptions { Steps = 100 }.Validate(), Data = "mnist", TrainSeconds = 12.5 };
        targets.Add(new Target("training.json", Encoding.UTF8.GetBytes(JsonSerializer.Serialize(state, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) } })),
            b => { File.WriteAllBytes(trainingJson, b); TokenizerCheckpoint.LoadState(dir["tok"]); }, Json: true));

        // A captioned image folder (what 'snce tokenize --text' reads): captions.jsonl over three 8×8 PNGs.
        Directory.CreateDirectory(dir["captioned"]);
        for (var i = 0; i < 3; i++)
        {
            using var img = randint(0, 255, [1, 3, 8, 8]).to(ScalarType.Byte);
            ImageGrid.SavePng(Path.Combine(dir["captioned"], $"img{i}.png"), img, 1);
        }
        var captionsJsonl = Path.Combine(dir["captioned"], Snce.Text.CaptionFile.FileName);
        var lines = string.Join("\n", new[] { ("img0.png", "a red square"), ("img1.png", "a blue circle"), ("img0.png", "one red square"), ("img2.png", "a green \"star\"") }
            .Select(l => JsonSerializer.Serialize(new { file = l.Item1, caption = l.Item2 }))) + "\n";
        targets.Add(new Target("captions.jsonl", Encoding.UTF8.GetBytes(lines), b =>
        {
            File.WriteAllBytes(captionsJsonl, b);
            Snce.Text.CaptionFile.Load(dir["captioned"], new DataOptions()).Dispose();
        }, Json: true, MissingFileIsExpected: true));

        // Caption shards (what 'train --text' reads): captions.json and the three text arrays, each mutated in place.
        var captionShards = Path.Combine(dir["tokens"], "text");
        Directory.CreateDirectory(captionShards);
        var (u, l, e, images) = (3, 4, 6, 2);
        using (var shards = new Snce.Text.CaptionShards
        {
            Info = new Snce.Text.CaptionShardsInfo
            {
                Encoder = "all-minilm-l6-v2-test", EncoderDim = e, MaxTokens = 32, Source = "captions.jsonl",
                Captions = ["a red square", "a blue circle", "one red square"], Train = [[0], [1]], HeldOut = [[2], []],
            },
            Tokens = randn(u, l, e).to(ScalarType.Float16), Lengths = tensor(new long[] { 4, 2, 3 }), Pooled = randn(u, e),
        })
            shards.Save(captionShards);
        foreach (var file in new[] { Snce.Text.CaptionShards.InfoFile, "text_tokens.npy", "text_lengths.npy", "text_pooled.npy" })
        {
            var path = Path.Combine(captionShards, file);
            var good = File.ReadAllBytes(path);
            targets.Add(new Target(file, good, b =>
            {
                File.WriteAllBytes(path, b);
                try { Snce.Text.CaptionShards.Load(captionShards, images).Dispose(); }
                finally { File.WriteAllBytes(path, good); }                  // the other parts stay valid for the next input
            }, Json: file.EndsWith(".json", StringComparison.Ordinal)));
        }
        return targets;
    }

    static readonly string[] JsonValues = ["-1", "0", "1", "-5", "1e308", "-1e308", "9223372036854775807", "99999999999999999999", "2147483648", "0.5", "NaN",
        "null", "true", "\"\"", "\"x\"", "[]", "{}", "[1]", "[-1,-1]", "[0,0]", "1e-320"];

    /// <summary>One to four mutations: bit flips, interesting bytes, cuts, insertions, copies; JSON also gets its values swapped.</summary>
    static byte[] Mutate(byte[] seed, bool json, Random rng)
    {
        var data = new List<byte>(seed);
        var count = 1 + rng.Next(4);
        for (var m = 0; m < count; m++)
        {
            if (data.Count == 0) data.Add(0);
            var at = rng.Next(data.Count);
            switch (rng.Next(json ? 9 : 7))
            {
                case 0: data[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: data[at] = (byte)new[] { 0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x20, (byte)'9' }[rng.Next(8)]; break;
                case 2: data.RemoveRange(at, data.Count - at); break;                                              // truncation
                case 3: data.RemoveRange(at, Math.Min(data.Count - at, 1 + rng.Next(16))); break;
                case 4: data.InsertRange(at, Enumerable.Range(0, 1 + rng.Next(8)).Select(_ => (byte)rng.Next(256))); break;
                case 5:
                {
                    var from = rng.Next(data.Count);
                    var len = Math.Min(data.Count - from, 1 + rng.Next(32));
                    data.InsertRange(at, data.GetRange(from, len));
                    break;
                }
                case 6:                                                                                             // a 4-byte field set to an extreme
                {
                    var v = BitConverter.GetBytes(new[] { 0, -1, int.MaxValue, int.MinValue, 0x10000, 1 << 30 }[rng.Next(6)]);
                    for (var j = 0; j < 4 && at + j < data.Count; j++) data[at + j] = v[j];
                    break;
                }
                default: data = [.. SwapJsonValue(data.ToArray(), rng)]; break;
            }
        }
        return [.. data];
    }

    /// <summary>Replaces one number, string, or literal of a JSON text by an interesting value.</summary>
    static byte[] SwapJsonValue(byte[] json, Random rng)
    {
        var text = Encoding.UTF8.GetString(json);
        var starts = new List<int>();
        for (var i = 1; i < text.Length; i++)
            if ((text[i - 1] is ':' or '[' or ',' or ' ') && (char.IsDigit(text[i]) || text[i] is '-' or '"' or 't' or 'f' or 'n')) starts.Add(i);
        if (starts.Count == 0) return json;
        var s = starts[rng.Next(starts.Count)];
        var e = s;
        if (text[s] == '"') { e = text.IndexOf('"', s + 1); if (e < 0) return json; e++; }
        else while (e < text.Length && (char.IsLetterOrDigit(text[e]) || text[e] is '-' or '.' or '+')) e++;
        return Encoding.UTF8.GetBytes(text[..s] + JsonValues[rng.Next(JsonValues.Length)] + text[e..]);
    }
}
