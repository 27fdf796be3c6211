using Snce.Losses;
using Snce.Models;

namespace Snce.Study;

/// <summary>
/// The CE-vs-SNCE study (issue 6): tokenizers at several codebook sizes, then generators trained with each loss
/// under identical step budgets, batch sizes and seeds, evaluated with FD-ResNet18 at fixed step intervals.
/// Named presets: <see cref="Quick"/> (CPU, minutes) and <see cref="Gpu"/> (one H200).
/// </summary>
public sealed record StudyConfig
{
    static readonly string Ce = LossKind.CrossEntropy.Name(), Snce = LossKind.Snce.Name();

    /// <summary>Data set name or image folder.</summary>
    public string Data { get; init; } = "fashion-mnist";
    /// <summary>Use only N images of each split (a fixed pseudo-random subset; null = all); also bounds the real reference set of FD.</summary>
    public int? Limit { get; init; }
    /// <summary>Images per split for evaluation only (bounds the real FD reference, the validation split); null = <see cref="Limit"/>.</summary>
    public int? EvalLimit { get; init; }
    /// <summary>Codebook sizes K: one tokenizer is trained per size and every generator cell repeats at each.</summary>
    public int[] Codebooks { get; init; } = [1024, 4096, 16384, 65536];
    /// <summary>Generator kinds: ar, mask.</summary>
    public string[] Objectives { get; init; } = ["ar", "mask"];
    /// <summary>Losses trained at every codebook size (ce must be one: every comparison is against it).</summary>
    public string[] Losses { get; init; } = [Ce, Snce];
    /// <summary>Extra losses trained only at <see cref="FocusCodebook"/> (baselines): label-smoothing (ε matched to SNCE), stochastic.</summary>
    public string[] FocusLosses { get; init; } = [LossKind.LabelSmoothing.Name(), LossKind.Stochastic.Name()];
    /// <summary>Codebook size of the baseline, τ-sweep and extra-seed cells; null = the middle of <see cref="Codebooks"/>.</summary>
    public int? FocusCodebook { get; init; }
    /// <summary>SNCE's target perplexity (τ is calibrated to it per tokenizer).</summary>
    public double Perplexity { get; init; } = 16;
    /// <summary>Other perplexities for the τ sweep (SNCE, first objective, focus codebook).</summary>
    public double[] SweepPerplexities { get; init; } = [4, 64];
    /// <summary>Training seeds of every cell (initialization, data order, training draws); one run per seed. Evaluation samples always use seed 0.</summary>
    public long[] Seeds { get; init; } = [0];
    /// <summary>More seeds for the headline cells (ce and snce at the focus codebook, every objective).</summary>
    public long[] HeadlineSeeds { get; init; } = [1, 2];
    /// <summary>
    /// Tuning: other peak learning rates, each run for every main cell (objective × loss × K) at the first seed, so every
    /// loss gets the same tuning effort; labelled e.g. ce-lr5e-4 (one factor at a time, the rest as configured).
    /// </summary>
    public double[] TuneLrs { get; init; } = [];
    /// <summary>Tuning: other backbone dropouts, run like <see cref="TuneLrs"/>; labelled e.g. snce-do0.1.</summary>
    public double[] TuneDropouts { get; init; } = [];
    /// <summary>
    /// An arm of every main cell at the first seed whose token embeddings start from the codebook (<c>snce train
    /// --init-embeddings codebook</c>), run like <see cref="TuneLrs"/> for every loss alike; labelled e.g. snce-cbemb.
    /// </summary>
    public bool TuneCodebookEmbeddings { get; init; }
    /// <summary>
    /// Run only the tuning runs (<see cref="TuneLrs"/>, <see cref="TuneDropouts"/>, <see cref="TuneCodebookEmbeddings"/>), not the main cells they are compared
    /// with: for a lease whose main cells were trained in an earlier one (merge both with <c>snce report</c>).
    /// </summary>
    public bool OnlyTuning { get; init; }

    /// <summary>Tokenizer architecture preset name (see <c>snce tokenizer train --preset</c>).</summary>
    public string TokenizerPreset { get; init; } = "small";
    /// <summary>Optimizer steps of each tokenizer.</summary>
    public int TokenizerSteps { get; init; } = 1500;
    /// <summary>Images per tokenizer step.</summary>
    public int TokenizerBatch { get; init; } = 128;
    /// <summary>Cap on each tokenizer's training time (seconds), or null.</summary>
    public int? TokenizerMaxSeconds { get; init; }
    /// <summary>Tokenizer quantizer: ema (moving-average codebook with dead-code restarts) or ibq (codebook trained through a softmax over all codes).</summary>
    public string Quantizer { get; init; } = "ema";
    /// <summary>Code distance of the tokenizers (l2, dot, cosine); quantization and the SNCE targets both use it.</summary>
    public string Metric { get; init; } = "l2";

    /// <summary>Generator size preset (tiny, S, ...), the same for every cell.</summary>
    public string Preset { get; init; } = "S";
    /// <summary>Optimizer steps of every generator run (the LR schedule's length).</summary>
    public int Steps { get; init; } = 1500;
    /// <summary>Token sequences per generator step.</summary>
    public int Batch { get; init; } = 128;
    /// <summary>Peak AdamW learning rate of the generators.</summary>
    public double Lr { get; init; } = 3e-4;
    /// <summary>Linear warmup steps; null = <c>snce train</c>'s default (5 % of the steps, at most 2,000).</summary>
    public long? Warmup { get; init; }
    /// <summary>Final LR of the cosine decay as a fraction of the peak.</summary>
    public double MinLrRatio { get; init; } = 0.1;
    /// <summary>AdamW weight decay (linear weights only).</summary>
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>Backbone dropout in training (attention weights and residual branches).</summary>
    public double Dropout { get; init; }
    /// <summary>EMA decay of the generator's weights (samplers use the EMA).</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Probability of training on the null class (classifier-free guidance).</summary>
    public double CfgDropout { get; init; } = 0.1;
    /// <summary>Keep a copy of the best checkpoint by this rule at the evaluation points (<c>val-ce</c> or <c>fd</c>), or null for the last only.</summary>
    public string? KeepBest { get; init; }
    /// <summary>Generated images at the final evaluation (and of the best checkpoint); null = <see cref="EvalImages"/>.</summary>
    public int? FinalEvalImages { get; init; }
    /// <summary>FD-ResNet18 (and validation) every this many steps.</summary>
    public int EvalEvery { get; init; } = 300;
    /// <summary>Generated images per FD evaluation (compare FD only at equal n).</summary>
    public int EvalImages { get; init; } = 2000;
    /// <summary>Classifier-free guidance scale s of every evaluation and sample grid (1 = the conditional model alone).</summary>
    public double Cfg { get; init; } = 2.0;
    /// <summary>How the guidance scale varies over each decoding of the evaluations and grids (constant, or linear from 1 to <see cref="Cfg"/>).</summary>
    public global::Snce.Sampling.CfgSchedule CfgSchedule { get; init; } = global::Snce.Sampling.CfgSchedule.Constant;
    /// <summary>Parallel decoding steps of the masked generators when sampling; AR generators decode one token at a time and ignore it.</summary>
    public int SamplingSteps { get; init; } = 8;
    /// <summary>Optimizer steps of the image classifier behind the class-accuracy score.</summary>
    public int ClassifierSteps { get; init; } = 1500;
    /// <summary>Images in the sample grid written for each finished run.</summary>
    public int GridImages { get; init; } = 64;

    /// <summary>
    /// CPU preset: one tokenizer, AR with CE and SNCE, 3,000 steps; the README's main job. SNCE's target perplexity is 2:
    /// at K = 1,024, 16 smoothed too much (FD 469 vs CE's 351) while 2 is level with CE (docs/RESULTS.md §3, τ sweep).
    /// </summary>
    public static StudyConfig Quick => new()
    {
        Limit = 12000, Perplexity = 2, EvalLimit = 2000, Codebooks = [1024], Objectives = ["ar"], Losses = [Ce, Snce], FocusLosses = [], SweepPerplexities = [],
        HeadlineSeeds = [], TokenizerPreset = "tiny", TokenizerSteps = 400, TokenizerBatch = 32, Quantizer = "ema",
        Preset = "tiny", Steps = 3000, Batch = 32, Lr = 1e-3, EvalEvery = 1000, EvalImages = 500, ClassifierSteps = 300, GridImages = 36,
    };

    /// <summary>
    /// One-H200 preset, the recipe of issue 10: K ∈ {1,024 … 262,144}, AR and masked, CE/SNCE everywhere, baselines, a τ sweep
    /// (perplexity 1 … 32) and extra seeds at K = 16,384; generators S at lr 1e-3, batch 256 (the run that gave recognizable
    /// samples, FACTS.md 2026-12-01), backbone dropout 0.1 (since 2026-12-03: the tuning sweep at K = 65,536 AR, where it
    /// lowered FD at n = 5,000 from 76.9 to 62.7 for CE and from 83.9 to 66.9 for SNCE, more than lr 5e-4 or 2e-3 did;
    /// docs/RESULTS.md section 0; cells run before that date used no dropout), 4,000 steps, 8 evaluation points at n = 1,000, the best checkpoint by FD kept and
    /// the last and best scored again at n = 5,000. The whole grid is many leases: run one cell at a time
    /// (tools/device_study.sh, --codebooks/--objectives/--losses/--seeds pick the cell).
    /// </summary>
    public static StudyConfig Gpu => new()
    {
        TokenizerMaxSeconds = 100, Codebooks = [1024, 4096, 16384, 65536, 262144], FocusCodebook = 16384, Perplexity = 8,
        SweepPerplexities = [1, 2, 4, 16, 32], Steps = 4000, Batch = 256, Lr = 1e-3, Dropout = 0.1, EvalEvery = 500, EvalImages = 1000, FinalEvalImages = 5000, KeepBest = "fd",
    };

    /// <summary>The preset called <paramref name="name"/> (quick or gpu, any case); throws naming the allowed ones otherwise.</summary>
    public static StudyConfig Named(string name) => name.ToLowerInvariant() switch
    {
        "quick" => Quick,
        "gpu" => Gpu,
        _ => throw new ArgumentException($"unknown study preset '{name}'; use one of quick, gpu"),
    };

    /// <summary>The codebook size of the focus cells: <see cref="FocusCodebook"/>, or the middle entry of <see cref="Codebooks"/>.</summary>
    public int Focus => FocusCodebook ?? Codebooks[Codebooks.Length / 2];


    /// <summary>Checks the grid before anything runs.</summary>
    public void Validate()
    {
        if (Codebooks.Length == 0) throw new ArgumentException("--codebooks: give at least one codebook size");
        if (!Losses.Any(l => EnumNames<LossKind>.Parse(l) == LossKind.CrossEntropy)) throw new ArgumentException("--losses must include ce: every comparison is against it");
        foreach (var o in Objectives)
            if (o is not ("ar" or "mask")) throw new ArgumentException($"unknown objective '{o}'; use ar, mask");
        foreach (var l in Losses.Concat(FocusLosses))
            EnumNames<LossKind>.Parse(l);                                          // unknown names fail naming the allowed ones
        if (Steps < 1 || EvalEvery < 1 || EvalEvery > Steps) throw new ArgumentException($"need 1 ≤ --eval-every ({EvalEvery}) ≤ --steps ({Steps})");
        if (EvalImages < 2) throw new ArgumentException("--eval-images must be at least 2");
        if (FocusCodebook is { } f && !Codebooks.Contains(f)) throw new ArgumentException($"--focus-codebook {f} is not one of --codebooks");
        if (Seeds.Length == 0) throw new ArgumentException("--seeds: give at least one seed");
        if (!(Lr > 0)) throw new ArgumentException($"--lr must be positive (got {Lr})");
        if (Warmup is < 0) throw new ArgumentException($"--warmup must be ≥ 0 (got {Warmup})");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"--weight-decay must be ≥ 0 (got {WeightDecay})");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"--dropout must be in [0, 1) (got {Dropout})");
        foreach (var lr in TuneLrs)
            if (!(lr > 0)) throw new ArgumentException($"--tune-lrs: every learning rate must be positive (got {lr})");
        foreach (var d in TuneDropouts)
            if (!(d >= 0 && d < 1)) throw new ArgumentException($"--tune-dropouts: every dropout must be in [0, 1) (got {d})");
        if (!(CfgDropout >= 0 && CfgDropout < 1)) throw new ArgumentException($"--cfg-dropout must be in [0, 1) (got {CfgDropout})");
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw new ArgumentException($"--ema must be in [0, 1) (got {EmaDecay})");
        if (Batch < 1) throw new ArgumentException($"--batch must be at least 1 (got {Batch})");
        global::Snce.Sampling.Guidance.CheckScale(Cfg);
        if (ClassifierSteps < 1) throw new ArgumentException($"--classifier-steps must be at least 1 (got {ClassifierSteps})");
        if (KeepBest is not null) EnumNames<global::Snce.Training.BestRule>.Parse(KeepBest);
        if (FinalEvalImages is < 2) throw new ArgumentException("--final-eval-images must be at least 2");
    }

    /// <summary>Every generator run of the study, in the order they should start (headline cells first).</summary>
    public IReadOnlyList<StudyRun> Runs()
    {
        Validate();
        var runs = new List<StudyRun>();
        void Add(string objective, string loss, int k, long seed, double? perplexity, string? label = null, double? lr = null, double? dropout = null,
            EmbeddingInit embeddings = EmbeddingInit.Random)
        {
            var name = $"{objective}-{label ?? loss}-K{k}-s{seed}";
            if (runs.All(r => r.Name != name)) runs.Add(new StudyRun(name, objective, loss, label ?? loss, k, seed, perplexity, lr ?? Lr, dropout ?? Dropout, embeddings));
        }
        double? P(LossKind loss) => loss is LossKind.Snce or LossKind.LabelSmoothing ? Perplexity : null;
        // Losses by kind, so 'CE' or 'Snce' on the command line name the same runs (and labels) as ce and snce.
        var losses = Losses.Select(EnumNames<LossKind>.Parse).Distinct().ToList();
        foreach (var seed in Seeds)
            foreach (var k in Codebooks.OrderBy(k => k == Focus ? 0 : 1))
                foreach (var o in Objectives)
                    foreach (var l in losses) Add(o, l.Name(), k, seed, P(l));
        foreach (var o in Objectives)
            foreach (var l in FocusLosses.Select(EnumNames<LossKind>.Parse)) Add(o, l.Name(), Focus, Seeds[0], P(l));
        foreach (var p in SweepPerplexities)
            Add(Objectives[0], Snce, Focus, Seeds[0], p, $"{Snce}-p{p:0.##}");
        foreach (var seed in HeadlineSeeds)
            foreach (var o in Objectives)
                foreach (var l in new[] { LossKind.CrossEntropy, LossKind.Snce }.Where(losses.Contains)) Add(o, l.Name(), Focus, seed, P(l));
        // The tuning runs: the same values for every loss, so no arm gets more tuning than another.
        var untuned = runs.Count;
        foreach (var lr in TuneLrs.Where(v => v != Lr))
            foreach (var k in Codebooks)
                foreach (var o in Objectives)
                    foreach (var l in losses) Add(o, l.Name(), k, Seeds[0], P(l), $"{l.Name()}-lr{Short(lr)}", lr: lr);
        foreach (var d in TuneDropouts.Where(v => v != Dropout))
            foreach (var k in Codebooks)
                foreach (var o in Objectives)
                    foreach (var l in losses) Add(o, l.Name(), k, Seeds[0], P(l), $"{l.Name()}-do{Short(d)}", dropout: d);
        if (TuneCodebookEmbeddings)
            foreach (var k in Codebooks)
                foreach (var o in Objectives)
                    foreach (var l in losses) Add(o, l.Name(), k, Seeds[0], P(l), $"{l.Name()}{CodebookEmbeddingsSuffix}", embeddings: EmbeddingInit.Codebook);
        if (!OnlyTuning) return runs;
        if (runs.Count == untuned)
            throw new ArgumentException("--only-tuning needs --tune-lrs or --tune-dropouts with a value other than the study's own --lr / --dropout, or --tune-codebook-embeddings");
        return runs.Skip(untuned).ToList();
    }

    /// <summary>The label suffix of the <see cref="TuneCodebookEmbeddings"/> arm (snce-cbemb).</summary>
    public const string CodebookEmbeddingsSuffix = "-cbemb";

    /// <summary>A value as run labels show it: 0.0005 → 5e-4, 0.002 → 2e-3, 0.1 → 0.1.</summary>
    public static string Short(double v)
    {
        if (v >= 0.01 || v == 0) return v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
        var e = (int)Math.Floor(Math.Log10(v));
        var m = v / Math.Pow(10, e);
        return $"{Math.Round(m, 2).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)}e{e}";
    }

    /// <summary>Evaluation points: EvalEvery, 2·EvalEvery, … and Steps.</summary>
    public IReadOnlyList<int> EvalSteps()
    {
        var s = new List<int>();
        for (var i = EvalEvery; i < Steps; i += EvalEvery) s.Add(i);
        s.Add(Steps);
        return s;
    }
}

/// <summary>One generator training run of the study.</summary>
/// <param name="Name">Folder name, e.g. ar-snce-K16384-s0.</param>
/// <param name="Objective">ar or mask.</param>
/// <param name="Loss">The loss trained (ce, snce, label-smoothing, stochastic).</param>
/// <param name="Label">The loss as reports show it (snce, snce-p4, …): runs with the same label, objective and K are seeds of one cell.</param>
/// <param name="CodebookSize">K of the tokenizer the run trains on.</param>
/// <param name="Seed">Training seed.</param>
/// <param name="Perplexity">SNCE's target perplexity, or label smoothing's matched one; null for ce and stochastic.</param>
/// <param name="Lr">Peak learning rate (the study's, or a tuning value).</param>
/// <param name="Dropout">Backbone dropout (the study's, or a tuning value).</param>
/// <param name="EmbeddingInit">How the run's token embeddings start (codebook in the <see cref="StudyConfig.TuneCodebookEmbeddings"/> arm).</param>
public sealed record StudyRun(string Name, string Objective, string Loss, string Label, int CodebookSize, long Seed, double? Perplexity, double Lr, double Dropout,
    EmbeddingInit EmbeddingInit = EmbeddingInit.Random);
