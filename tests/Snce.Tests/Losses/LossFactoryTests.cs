using Snce.Losses;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Losses;

public class LossFactoryTests
{
    static readonly Tensor Codebook = randn([10, 4], generator: new Generator(61)).DetachFromDisposeScope();

    static string Error(LossSpec options, Tensor? anchors = null) =>
        Assert.Throws<ArgumentException>(() => LossFactory.Create(options, Codebook, Metric.L2, anchors)).Message;

    [Theory]
    [InlineData("ce", typeof(CrossEntropyLoss))]
    [InlineData("label-smoothing", typeof(LabelSmoothingLoss))]
    [InlineData("SNCE", typeof(SnceLoss))]
    [InlineData("stochastic", typeof(StochasticQuantizationLoss))]
    public void BuildsEveryNamedLoss(string name, Type type)
    {
        var kind = EnumNames<LossKind>.Parse(name);
        var loss = LossFactory.Create(new LossSpec { Kind = kind, Tau = kind == LossKind.Snce ? 1 : null }, Codebook, Metric.L2);
        Assert.IsType(type, loss);
        Assert.Equal(name.ToLowerInvariant(), loss.Name);
        (loss as IDisposable)?.Dispose();
    }

    [Fact]
    public void CalibratedSnceExposesTauAndTheCalibration()
    {
        using var scope = NewDisposeScope();
        var z = randn([64, 4], generator: new Generator(62));
        using var loss = (SnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Perplexity = 3, TopK = 6 }, Codebook, Metric.L2, z);
        Assert.NotNull(loss.Calibration);
        Assert.Equal(loss.Tau, loss.Calibration!.Tau);
        Assert.True(Math.Abs(loss.Calibration.MeanPerplexity / 3 - 1) < 0.02);
        Assert.Equal(6, loss.Calibration.TopK);
        // Code anchors calibrate on token ids (their code vectors) as well as on vectors.
        using var byIds = (SnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Perplexity = 3, Anchor = NeighborAnchor.Code }, Codebook, Metric.L2, tensor(new long[] { 0, 1, 1, 9 }));
        using var byVectors = (SnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Perplexity = 3, Anchor = NeighborAnchor.Code }, Codebook, Metric.L2, Codebook.index_select(0, tensor(new long[] { 0, 1, 1, 9 })));
        Assert.Equal(byVectors.Tau, byIds.Tau);
        using var given = (SnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Tau = 0.25 }, Codebook, Metric.L2);
        Assert.Null(given.Calibration);
        Assert.Equal(0.25, given.Tau);
    }

    [Fact]
    public void EveryInvalidOptionFailsAtConstructionNamingTheValue()
    {
        Assert.Contains("unknown loss 'focal'; use one of ce, label-smoothing, snce, stochastic", Assert.Throws<ArgumentException>(() => EnumNames<LossKind>.Parse("focal")).Message);
        Assert.Contains("got -0.5", Error(new() { Kind = LossKind.Snce, Tau = -0.5 }));
        Assert.Contains("got 0", Error(new() { Kind = LossKind.Snce, Tau = 0 }));
        Assert.Contains("not both", Error(new() { Kind = LossKind.Snce, Tau = 1, Perplexity = 4 }));
        Assert.Contains("neither", Error(new() { Kind = LossKind.Snce }));
        Assert.Contains("[1, K = 10], got k = 11", Error(new() { Kind = LossKind.Snce, Tau = 1, TopK = 11 }));
        Assert.Contains("got k = 0", Error(new() { Kind = LossKind.Snce, Tau = 1, TopK = 0 }));
        Assert.Contains("[0, 1), got 1", Error(new() { Kind = LossKind.LabelSmoothing, Epsilon = 1 }));
        Assert.Contains("[0, 1), got -0.1", Error(new() { Kind = LossKind.LabelSmoothing, Epsilon = -0.1 }));
        Assert.Contains("[0, 1], got 1.5", Error(new() { Kind = LossKind.Stochastic, Alpha = 1.5 }));
        Assert.Contains("[2, K = 10]", Error(new() { Kind = LossKind.Stochastic, Delta = 1 }));
        Assert.Contains("got 11", Error(new() { Kind = LossKind.Stochastic, Delta = 11 }));
        Assert.Contains("unknown anchor 'pixel'; use one of latent, code", Assert.Throws<ArgumentException>(() => EnumNames<NeighborAnchor>.Parse("pixel")).Message);
        Assert.Contains("calibrationAnchors", Error(new() { Kind = LossKind.Snce, Perplexity = 4 }));
        using var z = randn(20, 4);
        Assert.Contains("(1, 10)", Error(new() { Kind = LossKind.Snce, Perplexity = 10 }, z));
        Assert.Contains("(1, 3)", Error(new() { Kind = LossKind.Snce, Perplexity = 4, TopK = 3 }, z));
        Assert.Contains("unknown loss implementation 'cuda'", Assert.Throws<ArgumentException>(() => LossNames.ParseImplementation("cuda")).Message);
        var fused = Assert.Throws<NotSupportedException>(() => LossFactory.Create(new LossSpec { Kind = LossKind.LabelSmoothing, Implementation = LossImplementation.Fused }, Codebook, Metric.L2));
        Assert.StartsWith("there is no fused label-smoothing", fused.Message);
        using var flat = zeros(10);
        Assert.Contains("[K, D]", Assert.Throws<ArgumentException>(() => LossFactory.Create(new LossSpec(), flat, Metric.L2)).Message);
        // The defaults of options a loss does not use are not checked (δ = 8 with K = 4 is fine for CE).
        using var small = randn(4, 2);
        Assert.IsType<CrossEntropyLoss>(LossFactory.Create(new LossSpec { Kind = LossKind.CrossEntropy }, small, Metric.L2));
        foreach (var impl in new[] { "auto", "reference" })
            Assert.IsType<SnceLoss>(LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Tau = 1, Implementation = LossNames.ParseImplementation(impl) }, Codebook, Metric.L2));
    }

    [Theory]
    // --loss-implementation, loss, device → implementation
    [InlineData("auto", "ce", TorchSharp.DeviceType.CUDA, LossImplementation.Fused)]
    [InlineData("auto", "snce", TorchSharp.DeviceType.CUDA, LossImplementation.Fused)]
    [InlineData("AUTO", "label-smoothing", TorchSharp.DeviceType.CUDA, LossImplementation.Reference)]   // no fused form
    [InlineData("auto", "stochastic", TorchSharp.DeviceType.CUDA, LossImplementation.Reference)]
    [InlineData("auto", "snce", TorchSharp.DeviceType.CPU, LossImplementation.Reference)]
    [InlineData("reference", "snce", TorchSharp.DeviceType.CUDA, LossImplementation.Reference)]
    [InlineData("fused", "ce", TorchSharp.DeviceType.CPU, LossImplementation.Fused)]
    public void AutoImplementationIsFusedOnCudaForLossesThatHaveOne(string text, string loss, TorchSharp.DeviceType device, LossImplementation expected)
    {
        var kind = EnumNames<LossKind>.Parse(loss);
        Assert.Equal(expected, LossNames.ResolveImplementation(text, kind, device));
    }

    /// <summary>One rule for every entry point: an option the chosen loss does not read is an error that names it and who reads it.</summary>
    [Fact]
    public void OptionsTheLossDoesNotReadAreErrors()
    {
        string Rejected(LossSpec spec) => Assert.Throws<ArgumentException>(() => spec.Validate()).Message;
        var topK = Rejected(new() { Kind = LossKind.CrossEntropy, TopK = 8 });
        Assert.Contains("--loss ce does not read", topK);
        Assert.Contains("--top-k 8", topK);
        Assert.Contains("--loss snce", topK);
        Assert.Contains("apply to --loss snce only", Rejected(new() { Kind = LossKind.LabelSmoothing, Tau = 1 }));
        Assert.Contains("--alpha 0.2", Rejected(new() { Kind = LossKind.Snce, Tau = 1, Alpha = 0.2 }));
        Assert.Contains("--epsilon 0.2", Rejected(new() { Kind = LossKind.Stochastic, Epsilon = 0.2 }));
        Assert.Contains("--anchor code", Rejected(new() { Kind = LossKind.CrossEntropy, Anchor = NeighborAnchor.Code }));
        Assert.Contains("only with --perplexity", Rejected(new() { Kind = LossKind.LabelSmoothing, TopK = 4 }));
        Assert.Contains("not both", Rejected(new() { Kind = LossKind.LabelSmoothing, Epsilon = 0.1, Perplexity = 3 }));
        // What each loss reads passes.
        new LossSpec { Kind = LossKind.LabelSmoothing, Perplexity = 3, TopK = 4, Anchor = NeighborAnchor.Code }.Validate();
        new LossSpec { Kind = LossKind.Stochastic, Alpha = 0.2, Delta = 4, Anchor = NeighborAnchor.Latent }.Validate();
        new LossSpec { Kind = LossKind.Snce, Perplexity = 3, TopK = 4, Anchor = NeighborAnchor.Latent, Implementation = LossImplementation.Fused }.Validate();
    }

    /// <summary>Every kind's name round-trips through the JSON converter and the parser, and both spell it the same.</summary>
    [Fact]
    public void EnumNamesAreTheJsonNames()
    {
        foreach (var kind in Enum.GetValues<LossKind>())
        {
            var json = System.Text.Json.JsonSerializer.Serialize(kind);
            Assert.Equal($"\"{kind.Name()}\"", json);
            Assert.Equal(kind, System.Text.Json.JsonSerializer.Deserialize<LossKind>(json));
            Assert.Equal(kind, EnumNames<LossKind>.Parse(kind.Name().ToUpperInvariant()));
        }
        Assert.Equal("\"code\"", System.Text.Json.JsonSerializer.Serialize(NeighborAnchor.Code));
        Assert.Equal("\"fused\"", System.Text.Json.JsonSerializer.Serialize(LossImplementation.Fused));
        Assert.Equal("ce, label-smoothing, snce, stochastic", EnumNames<LossKind>.Allowed);
    }

    public static TheoryData<string> AllLosses => ["ce", "label-smoothing", "snce", "stochastic"];

    /// <summary>Latent-anchored full SNCE; the code-anchored variant uses SNCE's precomputed top-k table.</summary>
    static ITokenLoss Create(string name, string anchor = "latent")
    {
        var kind = EnumNames<LossKind>.Parse(name);
        bool snce = kind == LossKind.Snce, stochastic = kind == LossKind.Stochastic;
        return LossFactory.Create(new LossSpec
        {
            Kind = kind, Tau = snce ? 0.5 : null, TopK = snce && anchor == "code" ? 4 : null, Delta = stochastic ? 3 : null,
            Anchor = snce || stochastic ? EnumNames<NeighborAnchor>.Parse(anchor) : null,
        }, Codebook, Metric.L2);
    }

    /// <summary>CheckValues off (the trainer's batches): no value checks, so NaN flows into the loss, but shapes are still checked.</summary>
    [Theory]
    [MemberData(nameof(AllLosses))]
    public void UncheckedTargetsSkipOnlyTheValueChecks(string name)
    {
        using var scope = NewDisposeScope();
        var loss = Create(name);
        var z = randn(5, 4);
        var tokens = tensor(new long[] { 0, 1, 2, 3, 9 });
        var nan = randn(5, 10).index_put_(float.NaN, 2, 3);
        Assert.Throws<ArgumentException>(() => loss.Forward(nan, new(tokens, z)));
        var o = loss.Forward(nan, new(tokens, z) { CheckValues = false });
        Assert.True(o.Loss.isnan().item<bool>(), $"{name}: a NaN logit must give a NaN loss for the trainer to catch, got {o.Loss.item<float>()}");
        Assert.Contains("K = 10", Assert.Throws<ArgumentException>(() => loss.Forward(randn(5, 9), new(tokens, z) { CheckValues = false })).Message);
    }

    [Theory]
    [MemberData(nameof(AllLosses))]
    public void BadInputsFailPerCallWithTheShapes(string name)
    {
        using var scope = NewDisposeScope();
        var loss = Create(name);
        var logits = randn(5, 10);
        var z = randn(5, 4);
        var tokens = tensor(new long[] { 0, 1, 2, 3, 9 });
        string Fail(Tensor x, TokenTargets t) => Assert.Throws<ArgumentException>(() => loss.Forward(x, t)).Message;
        Assert.Contains("[5, 9]", Fail(randn(5, 9), new(tokens, z)));
        Assert.Contains("K = 10", Fail(randn(5, 9), new(tokens, z)));
        Assert.Contains("[5, 10, 1]", Fail(randn(5, 10, 1), new(tokens, z)));
        Assert.Contains("found 10", Fail(logits, new(tensor(new long[] { 0, 1, 2, 3, 10 }), z)));
        Assert.Contains("found -1", Fail(logits, new(tensor(new long[] { 0, -1, 2, 3, 4 }), z)));
        Assert.Contains("[4]", Fail(logits, new(tensor(new long[] { 0, 1, 2, 3 }), z)));
        Assert.Contains("Float32", Fail(logits, new(tokens.to_type(ScalarType.Float32), z)));
        Assert.Contains("NaN or Inf", Fail(logits.index_put_(float.NaN, 2, 3), new(tokens, z)));
        Assert.Contains("NaN or Inf", Fail(randn(5, 10).index_put_(float.NegativeInfinity, 0, 0), new(tokens, z)));
        Assert.Contains("mask must be [N] = [5] bool", Fail(randn(5, 10), new(tokens, z, Mask: ones(5))));
        Assert.Contains("weights must be [N] = [5] float", Fail(randn(5, 10), new(tokens, z, Weights: ones(4))));
        if (name is "snce" or "stochastic")
        {
            Assert.Contains("Latents is null", Fail(randn(5, 10), new(tokens)));
            Assert.Contains("[5, 4]", Fail(randn(5, 10), new(tokens, randn(5, 3))));
            Assert.Contains("got [4, 4]", Fail(randn(5, 10), new(tokens, randn(4, 4))));
            // Code-anchored losses need no latents.
            var code = Create(name, "code");
            Assert.True(code.Forward(randn(5, 10), new(tokens)).Loss.isfinite().item<bool>());
        }
    }

    [Theory]
    [MemberData(nameof(AllLosses))]
    public void RepeatedForwardAndBackwardLeakNoTensors(string name)
    {
        using var scope = NewDisposeScope();
        var loss = Create(name);
        var logits = randn(6, 10).requires_grad_(true);
        var z = randn(6, 4);
        var targets = new TokenTargets(Metric.L2.Quantize(z, Codebook), z, ones(6, dtype: ScalarType.Bool), rand(6));
        LeakCheck.AssertNoLeak(() =>
        {
            using var s = NewDisposeScope();
            var output = loss.Forward(logits, targets);
            output.Loss.backward();
            logits.grad!.zero_();
        }, what: $"{name} Forward+backward in a caller's scope");
        LeakCheck.AssertNoLeak(() =>
        {
            var output = loss.Forward(logits, targets);
            output.Loss.Dispose(); output.HardCe.Dispose(); output.TargetEntropy?.Dispose();
        }, what: $"{name} Forward returns exactly its outputs");
        var code = Create(name, "code");
        LeakCheck.AssertNoLeak(() =>
        {
            var output = code.Forward(logits, targets);
            output.Loss.Dispose(); output.HardCe.Dispose(); output.TargetEntropy?.Dispose();
        }, what: $"code-anchored {name}");
        (loss as IDisposable)?.Dispose();
        (code as IDisposable)?.Dispose();
    }

    [Fact]
    public void Int32TokensAndFloat32InputsWork()
    {
        using var scope = NewDisposeScope();
        var z = randn(6, 4);
        var tokens = Metric.L2.Quantize(z, Codebook).to_type(ScalarType.Int32);
        using var snce = (SnceLoss)LossFactory.Create(new LossSpec { Kind = LossKind.Snce, Perplexity = 2, Anchor = NeighborAnchor.Code }, Codebook, Metric.L2, tokens);
        var targets = new TokenTargets(tokens, z);
        Assert.True(snce.Forward(randn(6, 10), targets).Loss.isfinite().item<bool>());
        Assert.InRange(LabelSmoothingLoss.EpsilonMatching(snce, targets), 0, 1);
        foreach (var name in new[] { "ce", "label-smoothing", "stochastic" })
            Assert.True(Create(name).Forward(randn(6, 10, dtype: ScalarType.BFloat16), targets).Loss.isfinite().item<bool>(), name);
    }
}
