using System.Buffers.Binary;
using System.Text;
using Snce.Data;
using Snce.IO;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.IO;

/// <summary>Issue #17 cases 6, 7 and 12: damaged or crafted files end in one clear error naming the file, never a native abort.</summary>
public class HostileInputTests
{
    /// <summary>A .npy v1.0 file whose header says <paramref name="shape"/>, followed by <paramref name="dataBytes"/> zero bytes.</summary>
    internal static byte[] NpyBytes(string descr, string shape, int dataBytes)
    {
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        var header = dict.PadRight(((10 + dict.Length + 1 + 63) / 64 * 64) - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)(header.Length & 0xff), (byte)(header.Length >> 8) };
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(new byte[dataBytes]);
        return [.. bytes];
    }

    [Theory]
    [InlineData("(100000000, 100000)", "only 16 bytes follow")]                // 4·10¹³ bytes promised
    [InlineData("(1099511627776, 1073741824)", "larger than any file")]        // 2⁴⁰ × 2³⁰ × 4 overflows int64
    [InlineData("(-5, 4)", "negative dimension -5")]
    [InlineData("(3, x)", "cannot read dimension 'x'")]
    public void ANpyHeaderIsCheckedAgainstTheFileBeforeAllocating(string shape, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["bad.npy"], NpyBytes("<f4", shape, 16));
        var e = Assert.Throws<InvalidDataException>(() => Npy.Load(dir["bad.npy"]));
        Assert.Contains(dir["bad.npy"], e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TruncatedNpyFilesNameTheFileAndWhatWasExpected()
    {
        using var dir = new TempDir();
        using (var t = arange(100, dtype: ScalarType.Float32)) Npy.Save(dir["a.npy"], t);
        var full = File.ReadAllBytes(dir["a.npy"]);
        foreach (var keep in new[] { 0, 5, 9, 40, full.Length - 1 })
        {
            File.WriteAllBytes(dir["cut.npy"], full[..keep]);
            var e = Assert.Throws<InvalidDataException>(() => Npy.Load(dir["cut.npy"]));
            Assert.Contains(dir["cut.npy"], e.Message);
            Assert.DoesNotContain("Unable to read beyond", e.Message);
        }
        File.WriteAllBytes(dir["cut.npy"], full[..^4]);
        Assert.Contains("[100] Float32 array (400 bytes) but only 396 bytes follow", Assert.Throws<InvalidDataException>(() => Npy.Load(dir["cut.npy"])).Message);
    }

    [Fact]
    public void EmptyTruncatedAndCraftedSafetensorsFailClearly()
    {
        using var dir = new TempDir();
        using (var scope = NewDisposeScope())
            Safetensors.Save(dir["m.safetensors"], new Dictionary<string, Tensor> { ["w"] = ones(64, 64) });
        var full = File.ReadAllBytes(dir["m.safetensors"]);

        File.WriteAllBytes(dir["x.safetensors"], []);
        Assert.Contains("0 bytes, shorter than the 8-byte header length", Assert.Throws<InvalidDataException>(() => Safetensors.Load(dir["x.safetensors"])).Message);
        File.WriteAllBytes(dir["x.safetensors"], full[..^100]);
        Assert.Contains("tensor 'w': data is truncated", Assert.Throws<InvalidDataException>(() => Safetensors.Load(dir["x.safetensors"])).Message);

        // A header that asks for 2⁴⁰ × 2⁴⁰ floats, and ones of the wrong JSON kinds: refused before any allocation.
        foreach (var entry in new[]
                 {
                     """{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}""",
                     """{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}""",
                     """{"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}}""",
                     """{"w":{"dtype":7,"shape":[4],"data_offsets":[0,16]}}""",
                     """{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}""",
                     """{"w":[1,2]}""",
                     """[1,2,3]""",
                     """{"__metadata__":{"step":3}}""",
                 })
        {
            var json = Encoding.UTF8.GetBytes(entry);
            var bytes = new byte[8 + json.Length + 16];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
            json.CopyTo(bytes, 8);
            File.WriteAllBytes(dir["x.safetensors"], bytes);
            var e = Assert.Throws<InvalidDataException>(() => Safetensors.Load(dir["x.safetensors"]));
            Assert.Contains(dir["x.safetensors"], e.Message);
        }
    }

    [Fact]
    public void ATruncatedShardsJsonIsOneClearErrorNamingTheFile()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        var path = Path.Combine(dir["tokens"], TokenShards.InfoFile);
        var text = File.ReadAllText(path);
        File.WriteAllText(path, text[..(text.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => TokenShards.Load(dir["tokens"]));
        Assert.StartsWith(path + ": not a valid shard description", e.Message);
        File.WriteAllText(path, text.Replace("\"grid\": [\n    4,\n    4\n  ]", "\"grid\": [4]"));
        Assert.Contains("grid must be two positive sizes", Assert.Throws<InvalidDataException>(() => TokenShards.Load(dir["tokens"])).Message);
    }

    [Fact]
    public void ANonFiniteCodebookIsRefusedWhenShardsLoad()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards()) shards.Save(dir["tokens"]);
        using (var codebook = Npy.Load(Path.Combine(dir["tokens"], "codebook.npy")))
        {
            codebook[3, 1] = float.NaN;
            Npy.Save(Path.Combine(dir["tokens"], "codebook.npy"), codebook);
        }
        Assert.Contains("codebook has NaN or infinite values", Assert.Throws<InvalidDataException>(() => TokenShards.Load(dir["tokens"])).Message);
    }

    [Fact]
    public void AShardFileOfTheWrongDtypeOrOutOfRangeValuesIsRefusedNamingIt()
    {
        using var dir = new TempDir();
        using (var shards = GeneratorFixtures.Shards(latents: true)) shards.Save(dir["tokens"]);
        string Refused() => Assert.Throws<InvalidDataException>(() => TokenShards.Load(dir["tokens"])).Message;
        void Edit(string file, Func<Tensor, Tensor> change)
        {
            var path = Path.Combine(dir["tokens"], file);
            var backup = path + ".good";
            if (!File.Exists(backup)) File.Copy(path, backup);
            using (var t = Npy.Load(backup))
            using (var changed = change(t))
                Npy.Save(path, changed);
        }
        void Restore(string file) => File.Copy(Path.Combine(dir["tokens"], file + ".good"), Path.Combine(dir["tokens"], file), overwrite: true);

        Edit("tokens.npy", t => t.to(ScalarType.Int64));
        Assert.Contains("tokens.npy holds Int64, expected Int32; re-run 'snce tokenize'", Refused());
        Restore("tokens.npy");
        Edit("tokens.npy", t => t.clone().index_fill_(0, tensor(new long[] { 2 }), 1_000_000));
        Assert.Contains("token ids span [0, 1000000] but the codebook has 16 codes", Refused());
        Restore("tokens.npy");
        Edit("latents.npy", t => t.clone().index_fill_(0, tensor(new long[] { 2 }), double.NaN));
        Assert.Contains("the latents have NaN or infinite values", Refused());
        Restore("latents.npy");
        Edit("split.npy", t => t.clone().fill_(7));
        Assert.Contains("split.npy holds values other than 0 (train) and 1 (validation)", Refused());
        Restore("split.npy");
        TokenShards.Load(dir["tokens"]).Dispose();                          // restored: loads again
    }

    [Fact]
    public void AnEditedNegativeTokenizerStepIsRejected()
    {
        using var dir = new TempDir();
        GeneratorFixtures.SaveTokenizerAndShards(dir["tok"], dir["tokens"]);
        var state = new Snce.Tokenizer.TokenizerTrainingState { Step = -5, Options = new Snce.Tokenizer.TokenizerTrainOptions { Steps = 10 }.Validate(), Data = "mnist" };
        File.WriteAllText(Path.Combine(dir["tok"], Snce.Tokenizer.TokenizerCheckpoint.StateFile),
            System.Text.Json.JsonSerializer.Serialize(state, new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower }));
        var e = Assert.Throws<InvalidDataException>(() => Snce.Tokenizer.TokenizerCheckpoint.LoadState(dir["tok"]));
        Assert.Contains("training.json: the state (step -5, 0 s trained) has a negative or non-finite value", e.Message);
        var r = CliRunner.Run("tokenizer", "train", "--data", MnistSample.Dir, "--steps", "20", "--resume", "--device", "cpu", "--out", dir["tok"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("has a negative or non-finite value", r.Stderr);
    }

    /// <summary>A valid 8-bit gray PNG signature and IHDR claiming <paramref name="width"/> × <paramref name="height"/>, then nothing.</summary>
    internal static byte[] PngHeader(int width, int height)
    {
        var b = new List<byte> { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13 };
        b.AddRange("IHDR"u8.ToArray());
        var wh = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(wh, width);
        BinaryPrimitives.WriteInt32BigEndian(wh.AsSpan(4), height);
        b.AddRange(wh);
        b.AddRange(new byte[] { 8, 0, 0, 0, 0 });
        b.AddRange(new byte[4]);                                          // CRC (not checked by the size probe)
        return [.. b];
    }

    [Fact]
    public void AHugePngIsTooLargeFromItsHeaderBeforeDecoding()
    {
        var e = Assert.Throws<InvalidDataException>(() => ImageFiles.Decode(PngHeader(100_000, 100_000), "big.png"));
        Assert.Contains("big.png: image too large (100000×100000", e.Message);
        Assert.Contains("8192×8192", e.Message);
        Assert.Equal(8192L * 8192, ImageFiles.MaxPixels);
        // Just inside the limit is not refused for its size (this one then fails for its missing data).
        var inside = Assert.Throws<InvalidDataException>(() => ImageFiles.Decode(PngHeader(8192, 8192), "ok.png"));
        Assert.DoesNotContain("too large", inside.Message);

        using var dir = new TempDir();
        Directory.CreateDirectory(dir["imgs/a"]);
        File.WriteAllBytes(dir["imgs/a/big.png"], PngHeader(100_000, 100_000));
        using (var small = ImageFilesTestImage()) ImageGrid.SaveSinglePng(dir["imgs/a/ok.png"], small);
        using var folder = ImageFolder.Load(dir["imgs"], new DataOptions());
        Assert.Contains(folder.Skipped, s => s.Path.EndsWith("big.png") && s.Reason.StartsWith("image too large (100000×100000"));
    }

    static Tensor ImageFilesTestImage() => full([1, 8, 8], (byte)200, ScalarType.Byte);
}
