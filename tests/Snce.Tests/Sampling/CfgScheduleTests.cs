using Snce.Models;
using Snce.Sampling;
using Snce.Tests.Support;
using static TorchSharp.torch;

namespace Snce.Tests.Sampling;

public class CfgScheduleTests
{
    [Theory]
    [InlineData(2.0)]
    [InlineData(3.3)]
    [InlineData(7.1)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void TheScheduleMatchesItsClosedForm(double s)
    {
        for (var n = 1; n <= 9; n++)
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(s, CfgSchedule.Constant.ScaleAt(s, i, n));
                // linear as a lerp between 1 (first step) and s (last step); n = 1 is the last step.
                var f = n == 1 ? 1.0 : (double)i / (n - 1);
                Assert.Equal((1 - f) * 1.0 + f * s, CfgSchedule.Linear.ScaleAt(s, i, n), 12);
            }
        for (var n = 2; n <= 9; n++)
        {
            Assert.Equal(1.0, CfgSchedule.Linear.ScaleAt(s, 0, n));              // exactly the conditional model: no unconditional pass needed
            Assert.Equal(s, CfgSchedule.Linear.ScaleAt(s, n - 1, n));            // exactly the final scale
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => CfgSchedule.Linear.ScaleAt(s, 3, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => CfgSchedule.Linear.ScaleAt(s, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CfgSchedule.Constant.ScaleAt(s, -1, 3));
    }

    [Fact]
    public void NamesParseAndBadNamesFailClearly()
    {
        Assert.Equal(CfgSchedule.Linear, EnumNames<CfgSchedule>.Parse("Linear"));
        Assert.Equal("constant", CfgSchedule.Constant.Name());
        Assert.Contains("constant, linear", Assert.Throws<ArgumentException>(() => EnumNames<CfgSchedule>.Parse("cosine")).Message);
    }

    /// <summary>
    /// Logits that reveal the scale they were combined with: conditional c_j = 2j − j², unconditional u_j = −j², so the
    /// guided logits u + s(c − u) = −j² + 2sj peak at j = s; greedy decoding then writes the step's scale as the token id.
    /// A condition −1 is the null condition.
    /// </summary>
    static Tensor ScaleRevealingLogits(Tensor condition, long positions, int k)
    {
        var j = arange(k, ScalarType.Float32);
        var c = 2 * j - j * j;
        var u = -j * j;
        var isNull = (condition == -1).view(-1, 1, 1);                        // [B, 1, 1]
        return where(isNull, u, c).expand(condition.shape[0], positions, k).clone();
    }

    const int K = 8;
    static readonly TokenSamplingOptions Greedy = new(Temperature: 0);

    sealed class ScaleRevealingSession(Tensor condition) : INextTokenSession
    {
        public Tensor Feed(Tensor tokens) => ScaleRevealingLogits(condition, 1, K).squeeze(1);
        public void Dispose() { }
    }

    [Fact]
    public void TheArSamplerGuidesEachTokenPositionWithItsScale()
    {
        using var scope = NewDisposeScope();
        NextTokenModel model = c => new ScaleRevealingSession(c);
        var cond = tensor(new long[] { 0, 3 });
        var uncond = full(2, -1L, ScalarType.Int64);
        long[] Row(Tensor ids) => ids[1].data<long>().ToArray();

        // T = 4 tokens, s = 4: linear scales 1, 2, 3, 4 by position; constant 4 everywhere.
        var linear = ArSampler.Sample(model, cond, uncond, 4, new ArSamplingOptions(Greedy, 4, CfgSchedule.Linear), new Generator(1));
        Assert.Equal([1L, 2, 3, 4], Row(linear));
        Assert.True(linear[0].Equals(linear[1]));
        var constant = ArSampler.Sample(model, cond, uncond, 4, new ArSamplingOptions(Greedy, 4), new Generator(1));
        Assert.Equal([4L, 4, 4, 4], Row(constant));

        // Inpainting: an editable token gets its position's scale; kept tokens are the source's.
        var source = zeros(2, 4, ScalarType.Int64);
        var editable = tensor(new[] { false, true, false, true }).unsqueeze(0).expand(2, -1);
        var edited = ArSampler.Inpaint(model, cond, uncond, source, editable, new ArSamplingOptions(Greedy, 4, CfgSchedule.Linear), new Generator(1));
        Assert.Equal([0L, 2, 0, 4], Row(edited));
    }

    [Fact]
    public void TheMaskedDecoderGuidesEachStepWithItsScaleAndSkipsTheNullPassAtScaleOne()
    {
        using var scope = NewDisposeScope();
        var batchRows = new List<long>();
        MaskedModel model = (c, x) => { batchRows.Add(x.shape[0]); return ScaleRevealingLogits(c, x.shape[1], K); };
        var cond = tensor(new long[] { 0, 1 });
        var uncond = full(2, -1L, ScalarType.Int64);
        const long mask = K;

        // 16 tokens in 4 cosine steps reveal 2, 3, 5, 6 tokens (16 masked, then 14, 11, 6, 0); linear s = 4 guides the steps
        // with 1, 2, 3, 4, so each revealed token's id is its step's scale.
        var o = new MaskedSamplingOptions(4, Greedy, ChoiceTemperature: 0, CfgScale: 4, CfgSchedule: CfgSchedule.Linear);
        var ids = MaskedSampler.Sample(model, cond, uncond, 16, mask, o, new Generator(1));
        for (var row = 0; row < 2; row++)
            Assert.Equal([2L, 3, 5, 6], Enumerable.Range(1, 4).Select(v => (ids[row] == v).sum().item<long>()).ToArray());
        Assert.Equal([2L, 4, 4, 4], batchRows);                                // step 0 (scale 1) runs the conditional batch alone

        batchRows.Clear();
        var constant = MaskedSampler.Sample(model, cond, uncond, 16, mask, o with { CfgSchedule = CfgSchedule.Constant }, new Generator(1));
        Assert.Equal(32L, (constant == 4).sum().item<long>());
        Assert.Equal([4L, 4, 4, 4], batchRows);

        // Inpainting runs the same ramp over its S steps: 6 editable tokens from r₀ = γ⁻¹(6/16) in 2 steps reveal 3 then 3
        // (⌊16·cos(π/2·(r₀ + (1 − r₀)/2))⌋ = 3 stay masked after the first), guided with 1 then 4.
        var source = zeros(2, 16, ScalarType.Int64);
        var editable = zeros(2, 16, ScalarType.Bool);
        editable.narrow(1, 5, 6).fill_(true);
        var edited = MaskedSampler.Inpaint(model, cond, uncond, source, editable, mask, o with { Steps = 2 }, new Generator(1));
        Assert.True(edited.masked_select(editable.logical_not()).eq(0).all().item<bool>());
        var remaining = (int)Math.Floor(Math.Cos(Math.PI / 2 * ((2 / Math.PI * Math.Acos(6 / 16.0)) + (1 - 2 / Math.PI * Math.Acos(6 / 16.0)) / 2)) * 16);
        Assert.Equal(6L - remaining, (edited[0] == 1).sum().item<long>());
        Assert.Equal((long)remaining, (edited[0] == 4).sum().item<long>());
    }

    static TokenGenerator Model(GeneratorKind kind)
    {
        random.manual_seed(21);
        var m = new TokenGenerator(GeneratorFixtures.Config(kind));
        using (no_grad()) nn.init.normal_(m.OutputWeight, 0, 0.5);
        return m;
    }

    [Theory]
    [InlineData(GeneratorKind.Autoregressive)]
    [InlineData(GeneratorKind.Masked)]
    public void LinearAtScaleOneIsBitIdenticalToConstant(GeneratorKind kind)
    {
        using var m = Model(kind);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2, 3, -1 });
        var o = new GeneratorSamplingOptions(new TokenSamplingOptions(), CfgScale: 1.0, Steps: 5);
        var constant = GeneratorSampler.Sample(m, cond, o, new Generator(7));
        var linear = GeneratorSampler.Sample(m, cond, o with { CfgSchedule = CfgSchedule.Linear }, new Generator(7));
        Assert.True(constant.Equals(linear));
        var source = randint(GeneratorFixtures.K, [5, 16], generator: new Generator(3));
        var editable = zeros(5, 16, ScalarType.Bool);
        editable.narrow(1, 4, 7).fill_(true);
        var a = GeneratorSampler.Inpaint(m, cond, source, editable, o, new Generator(9));
        var b = GeneratorSampler.Inpaint(m, cond, source, editable, o with { CfgSchedule = CfgSchedule.Linear }, new Generator(9));
        Assert.True(a.Equals(b));
        // A guided run differs, so the comparison above could have failed.
        Assert.False(constant.Equals(GeneratorSampler.Sample(m, cond, o with { CfgScale = 3 }, new Generator(7))));
    }

    [Fact]
    public void MaskedLinearInOneStepIsConstant()
    {
        using var m = Model(GeneratorKind.Masked);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2 });
        var o = new GeneratorSamplingOptions(new TokenSamplingOptions(), CfgScale: 3, Steps: 1);
        Assert.True(GeneratorSampler.Sample(m, cond, o, new Generator(4))
            .Equals(GeneratorSampler.Sample(m, cond, o with { CfgSchedule = CfgSchedule.Linear }, new Generator(4))));
    }

    /// <summary>
    /// The AR sampler against a reference written here: recompute the paired prefix every token, combine the conditional and
    /// null logits by the formula u + s_t·(c − u) (c alone at s_t = 1), draw with the same generator.
    /// </summary>
    static Tensor ReferenceAr(TokenGenerator m, Tensor cond, int length, double s, Func<int, double> scaleAt, ulong seed)
    {
        using var g = new Generator(seed);
        var b = cond.shape[0];
        using var session = GeneratorFunctions.Recompute(m)(Guidance.Pair(cond, m.Conditioning.NullLike(cond)));
        var tokens = zeros(b, length, ScalarType.Int64);
        var next = zeros(2 * b, 0, ScalarType.Int64);
        using var noGrad = no_grad();
        for (var t = 0; t < length; t++)
        {
            var logits = session.Feed(next).to_type(ScalarType.Float32);
            var (c, u) = (logits.narrow(0, 0, b), logits.narrow(0, b, b));
            var st = scaleAt(t);
            var id = TokenSampling.Sample(st == 1 ? c : u + st * (c - u), new TokenSamplingOptions(), g);
            tokens.select(1, t).copy_(id);
            next = cat([id, id], 0).unsqueeze(1);
        }
        return tokens;
    }

    [Theory]
    [InlineData(CfgSchedule.Constant)]
    [InlineData(CfgSchedule.Linear)]
    public void TheArSamplerMatchesAReferenceGuidedLoop(CfgSchedule schedule)
    {
        using var m = Model(GeneratorKind.Autoregressive);
        using var scope = NewDisposeScope();
        var cond = tensor(new long[] { 0, 1, 2, 3 });
        const double s = 2.5;
        var sampled = ArSampler.Sample(GeneratorFunctions.KvCached(m), cond, m.Conditioning.NullLike(cond), 16,
            new ArSamplingOptions(new TokenSamplingOptions(), s, schedule), new Generator(11));
        var reference = ReferenceAr(m, cond, 16, s, t => schedule == CfgSchedule.Constant ? s : 1 + (s - 1) * t / 15.0, 11);
        Assert.True(sampled.Equals(reference));
    }
}
