using System.Text.Json;
using Snce.IO;
using Snce.Losses;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

/// <summary>
/// Compares every loss with golden values that PyTorch computed (tools/golden_losses.py, float64): the mean loss,
/// its gradient w.r.t. the logits, the dense targets, hard CE, H(q) and the mean perplexity, within 1e-9.
/// </summary>
public class GoldenLossTests
{
    static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Golden", "losses");
    const double Tolerance = 1e-9;

    [Fact]
    public void EveryGoldenCaseMatchesPyTorch()
    {
        var index = Path.Combine(Folder, "cases.json");
        if (!File.Exists(index))
            Assert.Fail("golden files missing: run `python3 tools/golden_losses.py` where PyTorch is installed " +
                        "(it writes tests/Snce.Tests/Golden/losses/; commit them)");
        using var doc = JsonDocument.Parse(File.ReadAllText(index));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.NotEmpty(cases);
        var failures = cases.SelectMany(Check).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} mismatch(es) with PyTorch:\n" + string.Join("\n", failures));
    }

    static IEnumerable<string> Check(JsonElement c)
    {
        using var scope = NewDisposeScope();
        var name = c.GetProperty("name").GetString()!;
        var files = c.GetProperty("files");
        Tensor Load(string key) => Npy.Load(Path.Combine(Folder, files.GetProperty(key).GetString()!));
        double? Number(string key) => c.GetProperty(key).ValueKind == JsonValueKind.Null ? null : c.GetProperty(key).GetDouble();

        var metric = Metric.Parse(c.GetProperty("metric").GetString()!);
        var (logits, codebook, tokens) = (Load("logits"), Load("codebook"), Load("tokens"));
        var latents = files.TryGetProperty("latents", out _) ? Load("latents") : null;
        var failures = new List<string>();
        void Compare(string what, double expected, double actual)
        {
            if (!(Math.Abs(expected - actual) <= Tolerance)) failures.Add($"{name}: {what} expected {expected:R}, got {actual:R}");
        }
        void CompareTensors(string what, Tensor expected, Tensor actual)
        {
            if (!expected.shape.SequenceEqual(actual.shape)) { failures.Add($"{name}: {what} shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]"); return; }
            var err = (expected - actual).abs().max().item<double>();
            if (!(err <= Tolerance)) failures.Add($"{name}: {what} differs by up to {err:G3}");
        }

        if (latents is not null && !metric.Quantize(latents, codebook).equal(tokens).all().item<bool>())
            failures.Add($"{name}: Metric.Quantize disagrees with PyTorch's argmin");
        var kind = EnumNames<LossKind>.Parse(c.GetProperty("loss").GetString()!);
        var options = new LossSpec
        {
            Kind = kind,
            Tau = kind == LossKind.Snce ? Number("tau") : null,
            TopK = kind == LossKind.Snce && c.GetProperty("top_k").ValueKind != JsonValueKind.Null ? c.GetProperty("top_k").GetInt32() : null,
            Epsilon = kind == LossKind.LabelSmoothing ? Number("epsilon") ?? 0.1 : null,
            Anchor = kind == LossKind.Snce ? EnumNames<NeighborAnchor>.Parse(c.GetProperty("anchor").GetString()!) : null,
        };
        var loss = LossFactory.Create(options, codebook, metric);
        try
        {
            var targets = new TokenTargets(tokens, latents);
            var x = logits.detach().requires_grad_(true);
            var output = loss.Forward(x, targets);
            output.Loss.backward();
            Compare("loss", c.GetProperty("value").GetDouble(), output.Loss.item<double>());
            Compare("hard CE", c.GetProperty("hard_ce").GetDouble(), output.HardCe.item<double>());
            if (Number("target_entropy") is { } h && options.Kind != LossKind.CrossEntropy)
                Compare("H(q)", h, output.TargetEntropy!.item<double>());
            CompareTensors("grad_logits", Load("grad_logits"), x.grad!);
            var dense = ((IDenseTargets)loss).DenseTargets(targets, ScalarType.Float64);
            CompareTensors("targets", Load("targets"), dense);
            Compare("mean perplexity", c.GetProperty("mean_perplexity").GetDouble(), NeighborTargets.Perplexity(dense.log()).mean().item<double>());
        }
        finally
        {
            (loss as IDisposable)?.Dispose();
        }
        return failures;
    }
}
