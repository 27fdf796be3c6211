using System.Text.Json.Serialization;
using Snce.Training;

namespace Snce.Tokenizer;

/// <summary>Pixel loss between reconstruction and input (no perceptual or GAN term: this is a perceptual-free VQ autoencoder).</summary>
public enum ReconstructionLossKind
{
    /// <summary>Mean squared error: optimizes PSNR directly.</summary>
    L2,
    /// <summary>Mean absolute error: slightly sharper edges, slightly lower PSNR.</summary>
    L1,
}

/// <summary>How a tokenizer is trained (stored in training.json next to the checkpoint).</summary>
public sealed record TokenizerTrainOptions
{
    /// <summary>Total optimizer steps (a resumed run continues up to this count).</summary>
    public int Steps { get; init; } = 2000;
    /// <summary>Images per step, drawn uniformly with replacement from the training split.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Peak AdamW learning rate (after warmup; cosine decay to <see cref="MinLearningRateRatio"/> × this at the last step).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Linear warmup steps (at most a fifth of <see cref="Steps"/>).</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>The LR at the last step as a fraction of the peak, in [0, 1].</summary>
    public double MinLearningRateRatio { get; init; } = 0.1;
    /// <summary>AdamW decoupled weight decay, ≥ 0 (0 = none), applied to every parameter.</summary>
    public double WeightDecay { get; init; }
    /// <summary>AdamW's first-moment decay, in [0, 1).</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW's second-moment decay, in [0, 1).</summary>
    public double Beta2 { get; init; } = 0.99;
    /// <summary>The pixel reconstruction term.</summary>
    public ReconstructionLossKind Loss { get; init; } = ReconstructionLossKind.L2;

    /// <summary>Seeds the initial weights and every step's sampling (step s uses a generator seeded from (Seed, s), so a resumed run draws the same batches).</summary>
    public long Seed { get; init; }
    /// <summary>Steps between progress reports; each one reads the device once (loss, PSNR, utilization, NaN check).</summary>
    public int LogEvery { get; init; } = 25;
    /// <summary>Steps between checkpoints; 0 = only at the end.</summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value.</summary>
    public TokenizerTrainOptions Validate()
    {
        static void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        Check(Steps >= 1, $"steps must be ≥ 1, got {Steps}");
        Check(BatchSize >= 1, $"batch size must be ≥ 1, got {BatchSize}");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be > 0, got {LearningRate}");
        Check(WarmupSteps >= 0 && MinLearningRateRatio is >= 0 and <= 1, "warmup steps must be ≥ 0 and the minimum LR ratio in [0, 1]");
        Check(WeightDecay >= 0 && Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, "weight decay must be ≥ 0 and betas in [0, 1)");
        Check(LogEvery >= 1 && CheckpointEvery >= 0, $"log interval must be ≥ 1 and checkpoint interval ≥ 0, got {LogEvery} and {CheckpointEvery}");
        return this;
    }

    /// <summary>
    /// The learning-rate schedule: linear warmup over min(WarmupSteps, Steps/5) steps, then cosine decay to
    /// MinLearningRateRatio × LearningRate at the last step (<see cref="LrDecayConvention.PeakOnce"/>, the convention
    /// tokenizers have always trained with, so they stay bit-identical to those trained before).
    /// </summary>
    [JsonIgnore] public LrSchedule Schedule => new(LearningRate, Math.Min(WarmupSteps, Steps / 5), Steps, MinLearningRateRatio, LrDecayConvention.PeakOnce);

    /// <summary>Learning rate at a 1-based step (the trainer's step numbers): <see cref="Schedule"/> at step − 1.</summary>
    public double LearningRateAt(long step) => Schedule.At(step - 1);
}
