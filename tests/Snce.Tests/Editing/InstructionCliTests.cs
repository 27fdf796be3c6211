using System.Text.Json;
using Snce.Data;
using Snce.Tests.Support;
using Snce.Text;
using StbImageWriteSharp;
using static TorchSharp.torch;

namespace Snce.Tests.Editing;

/// <summary>
/// Instruction edits end to end on a tiny paired folder with instructions.jsonl: tokenize --pairs --text, train --text, edit --prompt, eval;
/// a run of the same shards without --text (what every paired run was before instructions) still trains and edits; the errors.
/// </summary>
public class InstructionCliTests
{
    const int Pairs = 24, Size = 16;

    static void Png(string path, Func<int, int, byte> f)
    {
        var px = new byte[Size * Size];
        for (var y = 0; y < Size; y++) for (var x = 0; x < Size; x++) px[y * Size + x] = f(x, y);
        using var fs = File.Create(path);
        new ImageWriter().WritePng(px, Size, Size, ColorComponents.Grey, fs);
    }

    static string Instruction(int i) => i % 2 == 0 ? "mirror it" : "make it darker";

    /// <summary>DIR/src, DIR/dst (even pairs mirrored, odd ones darkened) and instructions.jsonl naming each pair's edit.</summary>
    static void Folder(string dir, Func<int, string>? instruction = null)
    {
        Directory.CreateDirectory(Path.Combine(dir, "src"));
        Directory.CreateDirectory(Path.Combine(dir, "dst"));
        byte Source(int i, int x, int y) => (byte)((x * 16 + y * i * 3) % 256);
        var lines = new List<string>();
        for (var i = 0; i < Pairs; i++)
        {
            Png(Path.Combine(dir, $"src/p{i:D2}.png"), (x, y) => Source(i, x, y));
            Png(Path.Combine(dir, $"dst/p{i:D2}.png"), (x, y) => i % 2 == 0 ? Source(i, Size - 1 - x, y) : (byte)(Source(i, x, y) / 2));
            lines.Add(JsonSerializer.Serialize(new { name = $"p{i:D2}.png", instruction = (instruction ?? Instruction)(i) }));
        }
        File.WriteAllLines(Path.Combine(dir, "instructions.jsonl"), lines);
    }

    static void Tokenize(TempDir dir, string pairs, string output, bool text = true)
    {
        string[] args = ["tokenize", "--tokenizer", dir["tokenizer"], "--pairs", pairs, "--neighbors-k", "4", "--device", "cpu", "--json", "--out", output];
        var t = CliRunner.Run(text ? [.. args, "--text"] : args);
        Assert.True(t.ExitCode == 0, t.Stderr);
    }

    static void Train(string tokens, string run, bool text, string kind = "mask")
    {
        string[] args = ["train", kind, "--tokens", tokens, "--preset", "tiny", "--batch", "8", "--lr", "3e-3", "--steps", "6",
            "--log-every", "3", "--validate-every", "0", "--val-batches", "1", "--device", "cpu", "--out", run];
        var r = CliRunner.Run(text ? [.. args, "--text"] : args);
        Assert.True(r.ExitCode == 0, r.Stderr);
    }

    static void Fails(string[] args, params string[] expected)
    {
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode != 0, $"snce {string.Join(' ', args)} should fail");
        Assert.StartsWith("snce: error:", r.Stderr);
        foreach (var e in expected) Assert.Contains(e, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void Instructions_are_stored_trained_on_and_given_at_edit_time()
    {
        using var dir = new TempDir();
        Folder(dir["pairs"]);
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused"]);
        Tokenize(dir, dir["pairs"], dir["paired"]);
        // The shards hold each pair's instruction as its one caption, in the shards' row order (found by name).
        using (var shards = TokenShards.Load(dir["paired"]))
        using (var captions = CaptionShards.Load(dir["paired"], Pairs))
        {
            Assert.Equal(Snce.Editing.PairInstructions.Source, captions.Info.Source);
            Assert.Equal(["mirror it", "make it darker"], captions.Info.Captions.Order().Reverse().ToArray());
            for (var r = 0; r < Pairs; r++)
            {
                Assert.Single(captions.Info.Train[r]);
                Assert.Empty(captions.Info.HeldOut[r]);
                Assert.Equal(Instruction(int.Parse(shards.PairNames![r][1..3])), captions.Info.Captions[captions.Info.Train[r][0]]);
            }
        }
        Train(dir["paired"], dir["run"], text: true);
        Assert.Contains("\"conditioning\": \"instruction\"", File.ReadAllText(Path.Combine(dir["run"], "checkpoint", "checkpoint.json")));

        var r1 = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["pairs/src/p03.png"], "--prompt", "make it darker", "--n", "2", "--steps", "3",
            "--device", "cpu", "--json", "--out", dir["out.png"]);
        Assert.True(r1.ExitCode == 0, r1.Stderr);
        using (var doc = JsonDocument.Parse(r1.Stdout))
        {
            Assert.Equal("instruction", doc.RootElement.GetProperty("conditioning").GetString());
            Assert.Equal("make it darker", doc.RootElement.GetProperty("instruction").GetString());
            Assert.False(doc.RootElement.GetProperty("instruction_defaulted").GetBoolean());
        }
        var png = ImageFiles.Read(dir["out.png"]);
        Assert.Equal((2 + 3 * 18, 2 + 18), (png.Width, png.Height));                               // source + 2 results
        // Two instructions were trained: the edit must say which.
        Fails(["edit", "--checkpoint", dir["run"], "--image", dir["pairs/src/p03.png"], "--device", "cpu", "--out", dir["x.png"]],
            "trained with 2 instructions", "--prompt \"mirror it\"", "--prompt \"make it darker\"");
        // eval translates each held-out pair under its own instruction.
        var ev = CliRunner.Run("eval", "--checkpoint", dir["run"], "--json", "--sampling-steps", "2", "--device", "cpu");
        Assert.True(ev.ExitCode == 0, ev.Stderr);
        using (var doc = JsonDocument.Parse(ev.Stdout))
        {
            Assert.Equal("instruction", doc.RootElement.GetProperty("conditioning").GetString());
            Assert.Contains("same instruction", doc.RootElement.GetProperty("translation").GetProperty("nearest_by").GetString());
        }

        // The same shards without --text: a run conditioned on the source only, as paired runs were before instructions.
        Train(dir["paired"], dir["plain"], text: false);
        var manifest = File.ReadAllText(Path.Combine(dir["plain"], "checkpoint", "checkpoint.json"));
        Assert.Contains("\"conditioning\": \"source\"", manifest);
        Assert.DoesNotContain("\"text\"", manifest);
        var r2 = CliRunner.Run("edit", "--checkpoint", dir["plain"], "--image", dir["pairs/src/p03.png"], "--n", "2", "--steps", "3", "--device", "cpu", "--json", "--out", dir["plain.png"]);
        Assert.True(r2.ExitCode == 0, r2.Stderr);
        using (var doc = JsonDocument.Parse(r2.Stdout)) Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("instruction").ValueKind);
        Fails(["edit", "--checkpoint", dir["plain"], "--image", dir["pairs/src/p03.png"], "--prompt", "mirror it", "--device", "cpu", "--out", dir["x.png"]],
            "no text conditioning", "leave it out", "--text");
    }

    [Fact]
    public void A_run_of_one_instruction_takes_it_by_default()
    {
        using var dir = new TempDir();
        Folder(dir["pairs"], _ => "mirror it");
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused"]);
        Tokenize(dir, dir["pairs"], dir["paired"]);
        Train(dir["paired"], dir["run"], text: true, kind: "ar");
        var r = CliRunner.Run("edit", "--checkpoint", dir["run"], "--image", dir["pairs/src/p01.png"], "--n", "1", "--device", "cpu", "--json", "--out", dir["out.png"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("mirror it", doc.RootElement.GetProperty("instruction").GetString());
        Assert.True(doc.RootElement.GetProperty("instruction_defaulted").GetBoolean());
        Assert.True(File.Exists(dir["out.png"]));
    }

    [Fact]
    public void A_text_to_image_run_inpaints_under_a_prompt()
    {
        using var dir = new TempDir();
        Snce.Tests.Text.TextToImageCliTests.TokenizeInto(dir);
        var train = CliRunner.Run(Snce.Tests.Text.TextToImageCliTests.TrainArgs("mask", dir, dir["t2i"], 6));
        Assert.True(train.ExitCode == 0, train.Stderr);
        string[] edit = ["edit", "--checkpoint", dir["t2i"], "--image", dir["images/img_0_0.png"], "--fit", "--box", "0,0,8,8", "--n", "2", "--steps", "2", "--device", "cpu"];
        var r = CliRunner.Run([.. edit, "--prompt", "a red square", "--json", "--out", dir["out.png"]]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(0, doc.RootElement.GetProperty("tokens_changed_outside").GetInt32());
        Assert.All(doc.RootElement.GetProperty("results").EnumerateArray(), e => Assert.Equal("a red square", e.GetProperty("name").GetString()));
        Fails([.. edit, "--out", dir["x.png"]], "text-to-image run", "--prompt");
    }

    [Fact]
    public void Bad_instructions_fail_naming_the_file_and_line()
    {
        using var dir = new TempDir();
        Folder(dir["pairs"]);
        GeneratorFixtures.SaveTokenizerAndShards(dir["tokenizer"], dir["unused"]);
        var file = dir["pairs/instructions.jsonl"];
        var lines = File.ReadAllLines(file);
        string[] tokenize = ["tokenize", "--tokenizer", dir["tokenizer"], "--pairs", dir["pairs"], "--text", "--neighbors-k", "4", "--device", "cpu", "--out", dir["t"]];
        void With(string[] content, params string[] expected)
        {
            File.WriteAllLines(file, content);
            Fails(tokenize, [.. expected]);
        }
        With([.. lines.Take(2), "{\"name\": \"p02.png\", \"instruction\": ", .. lines.Skip(3)], "instructions.jsonl:3:", "not a JSON object");
        With([.. lines.Take(3), "[\"p03.png\", \"mirror it\"]", .. lines.Skip(4)], "instructions.jsonl:4:", "not an object");
        With([.. lines.Take(1), "{\"instruction\": \"mirror it\"}", .. lines.Skip(2)], "instructions.jsonl:2:", "missing: name");
        With([.. lines.Take(1), "{\"name\": \"p01.png\", \"instruction\": \" \"}", .. lines.Skip(2)], "instructions.jsonl:2:", "empty");
        With([.. lines, "{\"name\": \"nope.png\", \"instruction\": \"x\"}"], $"instructions.jsonl:{lines.Length + 1}:", "no pair named 'nope.png'");
        With([.. lines.Skip(1)], "instructions.jsonl gives no instruction for 1 of 24 pairs", "p00.png");
        File.Delete(file);
        Fails(tokenize, "instructions.jsonl is missing or empty", "leave out --text");
        // Shards without instructions: 'train --text' names the fix.
        Tokenize(dir, dir["pairs"], dir["plain"], text: false);
        Fails(["train", "mask", "--tokens", dir["plain"], "--text", "--preset", "tiny", "--steps", "2", "--device", "cpu", "--out", dir["r"]],
            "without instructions", "--text");
    }
}
