using System.Text.Json;
using Snce.IO;
using Snce.Losses;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Cli;

public class LossCommandTests
{
    /// <summary>Writes logits [7, 13], codebook [13, 4], latents [7, 4] and their tokens as .npy in <paramref name="dtype"/>.</summary>
    static void WriteInputs(TempDir dir, ScalarType dtype, ScalarType tokenType = ScalarType.Int64)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(71);
        var c = randn([13, 4], dtype: dtype, generator: g);
        var z = randn([7, 4], dtype: dtype, generator: g);
        Npy.Save(dir["L.npy"], randn([7, 13], dtype: dtype, generator: g) * 2);
        Npy.Save(dir["C.npy"], c);
        Npy.Save(dir["Z.npy"], z);
        Npy.Save(dir["T.npy"], Metric.L2.Quantize(z, c).to_type(tokenType));
    }

    /// <summary>Runs <c>snce loss</c> on the files in <paramref name="dir"/>; --logits and --codebook in <paramref name="args"/> replace the defaults.</summary>
    static CliRunner.Result Run(TempDir dir, params string[] args)
    {
        var defaults = new List<string> { "loss", "--out", dir["out"], "--device", "cpu" };
        if (!args.Contains("--logits")) defaults.AddRange(["--logits", dir["L.npy"]]);
        if (!args.Contains("--codebook")) defaults.AddRange(["--codebook", dir["C.npy"]]);
        return CliRunner.Run([.. defaults, .. args]);
    }

    [Theory]
    [InlineData("snce", ScalarType.Float64, new[] { "--latents", "Z", "--tau", "0.5" })]
    [InlineData("snce", ScalarType.Float32, new[] { "--tokens", "T", "--tau", "0.5", "--top-k", "4", "--metric", "cosine" })]
    [InlineData("snce", ScalarType.Float64, new[] { "--latents", "Z", "--perplexity", "3" })]
    [InlineData("ce", ScalarType.Float64, new[] { "--latents", "Z" })]
    [InlineData("label-smoothing", ScalarType.Float64, new[] { "--tokens", "T", "--epsilon", "0.2" })]
    public void WritesLossGradientTargetsAndInfo(string loss, ScalarType dtype, string[] extra)
    {
        using var dir = new TempDir();
        WriteInputs(dir, dtype, dtype == ScalarType.Float32 ? ScalarType.Int32 : ScalarType.Int64);
        var args = extra.Select(a => a is "Z" or "T" ? dir[a + ".npy"] : a).ToArray();
        var r = Run(dir, ["--loss", loss, .. args]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("wrote loss.npy", r.Stdout);

        using var scope = NewDisposeScope();
        var value = Npy.Load(dir["out/loss.npy"]);
        var grad = Npy.Load(dir["out/grad_logits.npy"]);
        var targets = Npy.Load(dir["out/targets.npy"]);
        Assert.Empty(value.shape);
        Assert.Equal([7L, 13], grad.shape);
        Assert.Equal([7L, 13], targets.shape);
        Assert.Equal(dtype, grad.dtype);
        Assert.Equal(dtype, targets.dtype);
        var tol = dtype == ScalarType.Float64 ? 1e-12 : 1e-6;
        // grad = (softmax(logits) − targets) / N, and the loss is the mean soft CE against the written targets.
        var logits = Npy.Load(dir["L.npy"]).to_type(ScalarType.Float64);
        var t64 = targets.to_type(ScalarType.Float64);
        var expectedGrad = (logits.softmax(1) - t64) / 7;
        Assert.True((grad.to_type(ScalarType.Float64) - expectedGrad).abs().max().item<double>() < tol, "grad ≠ (softmax − targets)/N");
        var expectedLoss = -(t64 * logits.log_softmax(1)).sum(1).mean().item<double>();
        Assert.True(Math.Abs(expectedLoss - value.to_type(ScalarType.Float64).item<double>()) < tol * 10, "loss ≠ mean soft CE");
        Assert.True((t64.sum(1) - 1).abs().max().item<double>() < tol, "targets are not distributions");

        using var info = JsonDocument.Parse(File.ReadAllText(dir["out/info.json"]));
        var root = info.RootElement;
        Assert.Equal(loss, root.GetProperty("loss_name").GetString());
        Assert.Equal(7, root.GetProperty("n").GetInt64());
        Assert.Equal(13, root.GetProperty("k").GetInt64());
        Assert.Equal(dtype == ScalarType.Float64 ? "float64" : "float32", root.GetProperty("dtype").GetString());
        Assert.Equal(value.to_type(ScalarType.Float64).item<double>(), root.GetProperty("loss").GetDouble(), 1e-9);
        Assert.True(root.GetProperty("hard_ce").GetDouble() > 0);
        var ppl = root.GetProperty("perplexity").GetProperty("mean").GetDouble();
        if (loss == "ce") Assert.Equal(1, ppl, 1e-9);
        if (loss == "snce")
        {
            Assert.True(root.GetProperty("tau").GetDouble() > 0);
            var h = root.GetProperty("target_entropy").GetDouble();
            Assert.Equal(value.to_type(ScalarType.Float64).item<double>() - h, root.GetProperty("kl").GetDouble(), 1e-9);
        }
        if (args.Contains("--perplexity"))
        {
            Assert.Equal(3, ppl, 0.06); // calibrated on these 7 latents: their mean perplexity is the target
            Assert.Equal(3, root.GetProperty("calibration").GetProperty("target_perplexity").GetDouble());
        }
    }

    [Fact]
    public void LatentInputsGiveTheLibrarysSnce()
    {
        using var dir = new TempDir();
        WriteInputs(dir, ScalarType.Float64);
        Assert.Equal(0, Run(dir, "--latents", dir["Z.npy"], "--tau", "0.3", "--metric", "dot").ExitCode);
        using var scope = NewDisposeScope();
        var (c, z) = (Npy.Load(dir["C.npy"]), Npy.Load(dir["Z.npy"]));
        var q = NeighborTargets.Probs(z, c, Metric.Dot, 0.3);
        Assert.True((Npy.Load(dir["out/targets.npy"]) - q).abs().max().item<double>() < 1e-15);
    }

    [Theory]
    [InlineData("missing file", "no such .npy file", "--latents", "nope.npy", "--tau", "1")]
    [InlineData("both τ and perplexity", "not both", "--latents", "Z", "--tau", "1", "--perplexity", "3")]
    [InlineData("neither τ nor perplexity", "needs --tau X or --perplexity P", "--latents", "Z")]
    [InlineData("both anchors", "exactly one of --latents", "--latents", "Z", "--tokens", "T", "--tau", "1")]
    [InlineData("no anchor", "exactly one of --latents", "--tau", "1")]
    [InlineData("tokens ≥ K", "found 13", "--tokens", "BIG", "--tau", "1")]
    [InlineData("N mismatch", "N = 7 rows but --latents has N = 6", "--latents", "Z6", "--tau", "1")]
    [InlineData("K mismatch", "K = 13 columns but --codebook has K = 12", "--latents", "Z", "--tau", "1", "--codebook", "C12")]
    [InlineData("wrong dtype", "dtype Int32 is not supported", "--latents", "ZI", "--tau", "1")]
    [InlineData("float tokens", "save int32 or int64", "--tokens", "Z", "--tau", "1")]
    [InlineData("perplexity ≥ K", "(1, 13)", "--latents", "Z", "--perplexity", "13")]
    [InlineData("τ ≤ 0", "got -1", "--latents", "Z", "--tau", "-1")]
    [InlineData("k > K", "got k = 14", "--latents", "Z", "--tau", "1", "--top-k", "14")]
    [InlineData("τ with CE", "apply to --loss snce only", "--latents", "Z", "--tau", "1", "--loss", "ce")]
    [InlineData("unknown loss", "unknown --loss 'focal'", "--latents", "Z", "--loss", "focal")]
    [InlineData("unknown metric", "unknown metric 'l1'", "--latents", "Z", "--tau", "1", "--metric", "l1")]
    public void BadInputsFailWithOneLineAndExit1(string what, string message, params string[] extra)
    {
        using var dir = new TempDir();
        WriteInputs(dir, ScalarType.Float32);
        using (var scope = NewDisposeScope())
        {
            Npy.Save(dir["BIG.npy"], tensor(new long[] { 0, 1, 2, 3, 4, 5, 13 }));
            Npy.Save(dir["Z6.npy"], randn(6, 4));
            Npy.Save(dir["C12.npy"], randn(12, 4));
            Npy.Save(dir["ZI.npy"], ones(7, 4, dtype: ScalarType.Int32));
        }
        var args = extra.Select(a => a is "Z" or "T" or "BIG" or "Z6" or "C12" or "ZI" ? dir[a + ".npy"] : a).ToArray();
        var r = Run(dir, args);
        Assert.True(r.ExitCode == Snce.Cli.SnceCli.RuntimeError, $"{what}: exit {r.ExitCode}, stderr {r.Stderr}");
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, line);
        Assert.False(File.Exists(dir["out/loss.npy"]), $"{what}: wrote output anyway");
    }
}
