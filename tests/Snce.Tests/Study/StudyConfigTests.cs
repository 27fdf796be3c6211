using Snce.Models;
using Snce.Study;

namespace Snce.Tests.Study;

public class StudyConfigTests
{
    [Fact]
    public void TheGpuGridHasEveryCellOnceWithHeadlineCellsFirst()
    {
        var c = StudyConfig.Gpu;
        var runs = c.Runs();
        // 5 K × 2 objectives × {ce, snce} + 2 objectives × 2 baselines + 5 sweep points + 2 extra seeds × 2 objectives × 2 losses.
        Assert.Equal(20 + 4 + 5 + 8, runs.Count);
        Assert.Equal(runs.Count, runs.Select(r => r.Name).Distinct().Count());
        Assert.Equal(16384, c.Focus);
        Assert.All(runs.Take(4), r => Assert.Equal(16384, r.CodebookSize));
        Assert.Equal(3, runs.Count(r => r.Objective == "ar" && r.Label == "snce" && r.CodebookSize == 16384));
        Assert.All(runs.Where(r => r.Loss is "snce" or "label-smoothing" && r.Label is "snce" or "label-smoothing"), r => Assert.Equal(8, r.Perplexity));
        Assert.Contains(runs, r => r.Label == "snce-p32" && r.Perplexity == 32 && r.Loss == "snce");
        Assert.All(runs.Where(r => r.Loss is "ce" or "stochastic"), r => Assert.Null(r.Perplexity));
        // The recipe: ≥ 8 evaluation points at n ≥ 1,000, the final/best at n ≥ 5,000, lr 1e-3, batch 256, and every run
        // (main, baselines, sweep, seeds) at the tuned dropout.
        Assert.True(c.EvalSteps().Count >= 8 && c.EvalImages >= 1000 && c.FinalEvalImages >= 5000);
        Assert.Equal((1e-3, 256, "S", "fd"), (c.Lr, c.Batch, c.Preset, c.KeepBest));
        Assert.All(runs, r => Assert.Equal(c.Dropout, r.Dropout));
        Assert.True(c.Dropout > 0);
    }

    [Fact]
    public void TheQuickPresetIsOneTokenizerAndTwoArRunsWithASmallPerplexity()
    {
        var runs = StudyConfig.Quick.Runs();
        Assert.Equal(["ar-ce-K1024-s0", "ar-snce-K1024-s0"], runs.Select(r => r.Name));
        Assert.Equal(2, runs.Single(r => r.Loss == "snce").Perplexity);   // 16 smoothed too much at K = 1,024 (docs/RESULTS.md)
    }

    [Fact]
    public void EvaluationStepsEndAtTheLastStep()
    {
        Assert.Equal([250, 500, 750, 1000], StudyConfig.Gpu with { Steps = 1000, EvalEvery = 250 } is var c ? c.EvalSteps() : null);
        Assert.Equal([300, 600, 700], (StudyConfig.Quick with { Steps = 700, EvalEvery = 300 }).EvalSteps());
    }

    [Fact]
    public void LossesAreMatchedByKindNotBySpelling()
    {
        // 'CE' and 'Snce' name the loss kinds: the baseline is found and the runs get the canonical names and labels.
        var runs = (StudyConfig.Quick with { Losses = ["CE", "Snce"], FocusLosses = ["Label-Smoothing"] }).Runs();
        Assert.Equal(["ar-ce-K1024-s0", "ar-snce-K1024-s0", "ar-label-smoothing-K1024-s0"], runs.Select(r => r.Name));
        Assert.Equal(["ce", "snce", "label-smoothing"], runs.Select(r => r.Label));
        Assert.Equal([null, 2.0, 2.0], runs.Select(r => r.Perplexity));
    }

    [Theory]
    [InlineData("no-ce")]
    [InlineData("bad-objective")]
    [InlineData("eval-every")]
    [InlineData("focus")]
    public void BadGridsFailBeforeAnythingRuns(string what)
    {
        var c = what switch
        {
            "no-ce" => StudyConfig.Quick with { Losses = ["snce"] },
            "bad-objective" => StudyConfig.Quick with { Objectives = ["diffusion"] },
            "eval-every" => StudyConfig.Quick with { EvalEvery = 10_000 },
            _ => StudyConfig.Quick with { FocusCodebook = 77 },
        };
        Assert.Throws<ArgumentException>(() => c.Runs());
        Assert.Throws<ArgumentException>(() => StudyConfig.Named("huge"));
    }

    [Fact]
    public void TuningRunsGiveEveryLossTheSameValuesAtTheFirstSeed()
    {
        var c = StudyConfig.Gpu with
        {
            Dropout = 0, Codebooks = [1024, 65536], FocusCodebook = 1024, FocusLosses = [], SweepPerplexities = [], HeadlineSeeds = [], Seeds = [3, 4],
            TuneLrs = [5e-4, 1e-3, 2e-3], TuneDropouts = [0.1],
        };
        var runs = c.Runs();
        // main: 2 seeds × 2 K × 2 objectives × 2 losses = 16; tuning: (2 lrs other than the study's 1e-3 + 1 dropout) × 2 K × 2 × 2 = 24.
        Assert.True(runs.Count == 16 + 24, string.Join(" ", runs.Select(r => r.Name)));
        var tuning = runs.Where(r => r.Label.Contains("-lr") || r.Label.Contains("-do")).ToList();
        Assert.Equal(24, tuning.Count);
        Assert.All(tuning, r => Assert.Equal(3, r.Seed));
        foreach (var label in new[] { "lr5e-4", "lr2e-3", "do0.1" })
            foreach (var loss in new[] { "ce", "snce" })
                Assert.Equal(4, tuning.Count(r => r.Label == $"{loss}-{label}" && r.Loss == loss));   // 2 K × 2 objectives, for each loss alike
        Assert.All(tuning.Where(r => r.Label.EndsWith("-lr5e-4")), r => Assert.Equal((5e-4, 0.0), (r.Lr, r.Dropout)));
        Assert.All(tuning.Where(r => r.Label.EndsWith("-do0.1")), r => Assert.Equal((1e-3, 0.1), (r.Lr, r.Dropout)));
        Assert.All(runs.Except(tuning), r => Assert.Equal((1e-3, 0.0), (r.Lr, r.Dropout)));
        Assert.All(tuning.Where(r => r.Loss == "snce"), r => Assert.Equal(8, r.Perplexity));
        Assert.Throws<ArgumentException>(() => (c with { TuneLrs = [-1] }).Runs());
        Assert.Throws<ArgumentException>(() => (c with { TuneDropouts = [1] }).Runs());
        Assert.Equal(["5e-4", "2e-3", "0.1", "3.5e-5"], new[] { 5e-4, 2e-3, 0.1, 3.5e-5 }.Select(StudyConfig.Short));
        // --only-tuning: exactly the tuning runs, none of the main cells; refused when there is nothing to tune.
        Assert.Equal(tuning.Select(r => r.Name), (c with { OnlyTuning = true }).Runs().Select(r => r.Name));
        Assert.Throws<ArgumentException>(() => (c with { OnlyTuning = true, TuneLrs = [1e-3], TuneDropouts = [] }).Runs());
    }

    [Fact]
    public void TheCodebookEmbeddingArmRunsEveryLossAlikeAtTheFirstSeed()
    {
        var c = StudyConfig.Gpu with
        {
            Codebooks = [65536], FocusCodebook = 65536, FocusLosses = [], SweepPerplexities = [], HeadlineSeeds = [], Seeds = [0, 1],
            TuneCodebookEmbeddings = true,
        };
        var runs = c.Runs();
        var arm = runs.Where(r => r.EmbeddingInit == EmbeddingInit.Codebook).ToList();
        // main: 2 seeds × 2 objectives × 2 losses = 8 random-init runs; the arm: 2 objectives × 2 losses at seed 0.
        Assert.Equal(8, runs.Count(r => r.EmbeddingInit == EmbeddingInit.Random));
        Assert.Equal(["ar-ce-cbemb-K65536-s0", "ar-snce-cbemb-K65536-s0", "mask-ce-cbemb-K65536-s0", "mask-snce-cbemb-K65536-s0"], arm.Select(r => r.Name).Order());
        Assert.All(arm, r => Assert.Equal((c.Lr, c.Dropout, 0L), (r.Lr, r.Dropout, r.Seed)));
        Assert.Equal(arm.Select(r => r.Name), (c with { OnlyTuning = true }).Runs().Select(r => r.Name));
        Assert.DoesNotContain((c with { TuneCodebookEmbeddings = false }).Runs(), r => r.EmbeddingInit != EmbeddingInit.Random);
    }
}
