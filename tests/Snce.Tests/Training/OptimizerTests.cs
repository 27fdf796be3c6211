using Snce.Models;
using Snce.Tests.Support;
using Snce.Tokenizer;
using Snce.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

public class OptimizerTests
{
    static TokenGenerator Model() => GeneratorFixtures.RandomHead(GeneratorFixtures.Config(GeneratorKind.Autoregressive), seed: 5, std: 0.1);

    static Tensor Loss(TokenGenerator m, int step)
    {
        var g = new Generator((ulong)step + 100);
        var tokens = randint(16, [4, 16], generator: g);
        var logits = m.Forward(tensor(new long[] { 0, 1, 2, 3 }), tokens.narrow(1, 0, 15));
        return nn.functional.cross_entropy(logits.reshape(-1, 16), tokens.reshape(-1));
    }

    [Fact]
    public void FlatAdamWMatchesTorchSharpAdamWWithDecayGroups()
    {
        const double lr = 1e-2, wd = 0.1;
        using var a = Model();
        using var b = Model();
        var groupsB = b.ParameterGroups();
        var reference = optim.AdamW([
            new AdamW.ParamGroup(groupsB.Where(g => g.Decay).Select(g => g.Parameter), new AdamW.Options { weight_decay = wd }),
            new AdamW.ParamGroup(groupsB.Where(g => !g.Decay).Select(g => g.Parameter), new AdamW.Options { weight_decay = 0 }),
        ], lr: lr, beta1: 0.9, beta2: 0.95, eps: 1e-8);
        using var flat = new FlatParameters(a.ParameterGroups());
        using var adam = new FlatAdamW(flat, new AdamWOptions(0.9, 0.95, 1e-8, wd, MaxGradNorm: 0));
        for (var step = 0; step < 6; step++)
        {
            using var scope = NewDisposeScope();
            flat.ZeroGrad();
            Loss(a, step).backward();
            adam.Step(lr);
            reference.zero_grad();
            Loss(b, step).backward();
            reference.step();
        }
        var pb = b.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        foreach (var (name, p) in a.named_parameters())
        {
            var diff = (p - pb[name]).abs().max().item<float>();
            Assert.True(diff < 1e-6, $"{name}: max |Δ| = {diff}");
        }
    }

    [Fact]
    public void FlatBuffersHoldTheParametersAndAccumulateGradients()
    {
        using var m = Model();
        using var flat = new FlatParameters(m.ParameterGroups());
        Assert.Equal(m.parameters().Sum(p => p.numel()), flat.Slots.Sum(s => s.Count));
        Assert.All(flat.Slots, s => Assert.Equal(0, s.Offset % FlatParameters.Alignment));
        Assert.True(flat.Slots.TakeWhile(s => s.Decay).Count() == flat.Slots.Count(s => s.Decay));   // decay group first
        using var scope = NewDisposeScope();
        Loss(m, 0).backward();
        var fromParams = m.named_parameters().Select(x => x.parameter.grad!.norm().pow(2).item<float>()).Sum();
        Assert.Equal(1, flat.Grads.norm().pow(2).item<float>() / fromParams, 4);                     // grads live in the flat buffer
        flat.Values.narrow(0, 0, 1).fill_(42);
        Assert.Equal(42, m.named_parameters().First(x => x.name == flat.Slots[0].Name).parameter.view(-1)[0].item<float>());
        flat.ZeroGrad();
        Assert.Equal(0, m.parameters().Sum(p => p.grad!.abs().sum().item<float>()));
    }

    [Fact]
    public void ClippingScalesTheGradientToTheMaxNorm()
    {
        using var m = Model();
        using var flat = new FlatParameters(m.ParameterGroups());
        using var adam = new FlatAdamW(flat, new AdamWOptions(MaxGradNorm: 1e-3));
        using var scope = NewDisposeScope();
        Loss(m, 0).backward();
        var before = flat.Grads.norm().item<float>();
        var reported = adam.Step(1e-3).item<float>();
        Assert.Equal(before, reported, 4);
        Assert.Equal(1e-3, flat.Grads.norm().item<float>(), 6);
    }

    [Fact]
    public void LrScheduleClosedForm()
    {
        var s = new LrSchedule(1.0, WarmupSteps: 10, TotalSteps: 110, MinLrRatio: 0.1);
        Assert.Equal(0.1, s.At(0), 12);
        Assert.Equal(0.5, s.At(4), 12);
        Assert.Equal(1.0, s.At(9), 12);
        Assert.Equal(1.0, s.At(10), 12);
        Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * 0.25)), s.At(35), 12);
        Assert.Equal(0.55, s.At(60), 12);
        Assert.Equal(0.1, s.At(110), 12);
        Assert.Equal(0.1, s.At(500), 12);
        Assert.Equal(1.0, new LrSchedule(1.0, 0, 10).At(0), 12);
    }

    /// <summary>
    /// The shared cosine factor changed no learning rate: each caller's value is bit-identical to the formula it
    /// replaced (copied here as it stood), over every step of several schedules, the ends included.
    /// </summary>
    [Fact]
    public void SharedCosineReproducesTheFormulasItReplaced()
    {
        foreach (var (lr, steps) in new[] { (1e-3, 1), (1e-3, 7), (3e-4, 1500), (2e-3, 4000) })
            for (var step = 1; step <= steps; step++)
            {
                var old = lr * 0.5 * (1 + Math.Cos(Math.PI * (step - 1) / steps));        // ClassifierTraining / TextAlignment
                Assert.Equal(BitConverter.DoubleToInt64Bits(old), BitConverter.DoubleToInt64Bits(LrSchedule.CosineFromStepOne(lr, step, steps)));
            }
        foreach (var (lr, warmup, steps, ratio) in new[] { (1e-3, 100, 1000, 0.1), (2e-3, 1, 37, 0.0), (5e-4, 500, 3000, 0.25), (1e-3, 0, 50, 1.0) })
        {
            var tokenizer = new TokenizerTrainOptions { Steps = steps, LearningRate = lr, WarmupSteps = warmup, MinLearningRateRatio = ratio };
            var schedule = new LrSchedule(lr, warmup, steps, ratio);
            for (var step = 0; step <= steps + 2; step++)
            {
                var w = Math.Min(warmup, steps / 5);                                          // TokenizerTrainOptions.LearningRateAt, 1-based
                var oldTok = step <= w ? lr * step / Math.Max(1, w)
                    : lr * (ratio + (1 - ratio) * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp((double)(step - w) / Math.Max(1, steps - w), 0, 1))));
                Assert.Equal(BitConverter.DoubleToInt64Bits(oldTok), BitConverter.DoubleToInt64Bits(tokenizer.LearningRateAt(step)));
                double oldGen;                                                                 // LrSchedule.At, 0-based
                if (step < warmup) oldGen = lr * (step + 1) / warmup;
                else
                {
                    var min = lr * ratio;
                    var progress = Math.Min(1.0, (double)(step - warmup) / Math.Max(1, steps - warmup));
                    oldGen = min + (lr - min) * 0.5 * (1 + Math.Cos(Math.PI * progress));
                }
                Assert.Equal(BitConverter.DoubleToInt64Bits(oldGen), BitConverter.DoubleToInt64Bits(schedule.At(step)));
            }
        }
    }

    /// <summary>
    /// The tokenizer's schedule is <see cref="LrSchedule"/> with <see cref="LrDecayConvention.PeakOnce"/>, and the two
    /// conventions differ where LrDecayConvention's documentation says: at the tokenizer's defaults (2,000 steps, warmup
    /// 100) the generator's convention would change 1,900 rates (the decay starts a step later), and the PeakOnce decay
    /// rounded the generator's way 616 rates, each by less than 1e-15 relative.
    /// </summary>
    [Fact]
    public void TheTokenizersScheduleIsLrScheduleWithTheDocumentedConvention()
    {
        var o = new TokenizerTrainOptions();
        Assert.Equal(new LrSchedule(1e-3, 100, 2000, 0.1, LrDecayConvention.PeakOnce), o.Schedule);
        var peakTwice = o.Schedule with { Convention = LrDecayConvention.PeakTwice };
        var (shifted, rounded, worst) = (0, 0, 0.0);
        for (var step = 1; step <= o.Steps; step++)
        {
            var lr = o.LearningRateAt(step);
            Assert.Equal(BitConverter.DoubleToInt64Bits(o.Schedule.At(step - 1)), BitConverter.DoubleToInt64Bits(lr));
            if (peakTwice.At(step - 1) != lr) shifted++;
            if (step <= 100) continue;
            var min = 1e-3 * 0.1;                                                            // PeakOnce's decay, mixed as PeakTwice mixes
            var other = min + (1e-3 - min) * LrSchedule.CosineFactor(Math.PI * Math.Min(1.0, (double)(step - 100) / 1900));
            if (other != lr) rounded++;
            worst = Math.Max(worst, Math.Abs(other - lr) / lr);
        }
        Assert.Equal((1900, 616), (shifted, rounded));
        Assert.InRange(worst, 1e-17, 1e-15);
        Assert.Equal(1e-3, o.LearningRateAt(100), 15);                                       // the peak, once
        Assert.True(o.LearningRateAt(101) < 1e-3);
        Assert.Equal(1e-3, peakTwice.At(99), 15);                                            // the peak, twice
        Assert.Equal(1e-3, peakTwice.At(100), 15);
        Assert.Equal(1e-4, o.LearningRateAt(2000), 15);                                      // the floor at the last step
        Assert.Throws<ArgumentException>(() => (o.Schedule with { Convention = (LrDecayConvention)7 }).At(500));
    }

    [Fact]
    public void WarmupDefaultIsOneRule()
    {
        Assert.Equal(500, new TrainingConfig().WarmupSteps);                                  // the old library default, at the default 10,000 steps
        Assert.Equal(TrainingConfig.DefaultWarmupSteps(600), new TrainingConfig { Steps = 600 }.WarmupSteps);
        Assert.Equal(30, TrainingConfig.DefaultWarmupSteps(600));                             // 5 %
        Assert.Equal(2000, TrainingConfig.DefaultWarmupSteps(1_000_000));                     // capped
        Assert.Equal(7, new TrainingConfig { Steps = 600, WarmupSteps = 7 }.WarmupSteps);     // an explicit value wins
        Assert.Equal(7, (new TrainingConfig { WarmupSteps = 7 } with { Steps = 600 }).WarmupSteps);
    }

    [Fact]
    public void EmaClosedForm()
    {
        using var w = full(5, 3.0f);
        using var ema = new Ema(w, 0.9);
        w.fill_(1.0f);
        for (var i = 0; i < 7; i++) ema.Update();
        // e_n = w + (e_0 − w)·d^n
        Assert.Equal(1 + 2 * Math.Pow(0.9, 7), ema.Values[0].item<float>(), 5);
        Assert.Throws<ArgumentException>(() => new Ema(w, 1.0));
    }
}
