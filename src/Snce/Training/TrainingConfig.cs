using System.Text.Json.Serialization;
using Snce.Objectives;

namespace Snce.Training;

/// <summary>How to train: schedule, optimizer, EMA, precision, cadence of logs/validation/checkpoints, seed.</summary>
public sealed record TrainingConfig
{
    /// <summary>Total optimizer steps (the LR schedule's length).</summary>
    [JsonPropertyName("steps")] public long Steps { get; init; } = 10_000;
    /// <summary>Sequences per step over all processes (the global batch; each of N processes reads Batch ÷ N of them).</summary>
    [JsonPropertyName("batch")] public int Batch { get; init; } = 64;
    /// <summary>Peak learning rate.</summary>
    [JsonPropertyName("lr")] public double Lr { get; init; } = 3e-4;
    /// <summary>Final LR as a fraction of the peak.</summary>
    [JsonPropertyName("min_lr_ratio")] public double MinLrRatio { get; init; } = 0.1;
    /// <summary>Linear warmup steps; unset, <see cref="DefaultWarmupSteps"/> of <see cref="Steps"/> (500 at the default 10,000 steps).</summary>
    [JsonPropertyName("warmup_steps")] public long WarmupSteps { get => warmupSteps ?? DefaultWarmupSteps(Steps); init => warmupSteps = value; }
    readonly long? warmupSteps;
    /// <summary>AdamW and clipping.</summary>
    [JsonPropertyName("adamw")] public AdamWOptions AdamW { get; init; } = new();
    /// <summary>EMA decay of the weights.</summary>
    [JsonPropertyName("ema_decay")] public double EmaDecay { get; init; } = 0.999;
    /// <summary>fp32 | tf32 | bf16.</summary>
    [JsonPropertyName("precision")] public Precision Precision { get; init; } = Precision.Fp32;
    /// <summary>Save a checkpoint every N steps (and at exit).</summary>
    [JsonPropertyName("checkpoint_every")] public long CheckpointEvery { get; init; } = 1000;
    /// <summary>Validate every N steps (and at the end); 0 = only at the end.</summary>
    [JsonPropertyName("validate_every")] public long ValidateEvery { get; init; } = 500;
    /// <summary>Batches of the held-out split per validation (the first ones, in fixed order).</summary>
    [JsonPropertyName("validation_batches")] public int ValidationBatches { get; init; } = 16;
    /// <summary>Read metrics back from the device (a sync) and log them every N steps.</summary>
    [JsonPropertyName("log_every")] public long LogEvery { get; init; } = 50;
    /// <summary>Seeds the initialization, the data order and every random draw of training.</summary>
    [JsonPropertyName("seed")] public long Seed { get; init; }
    /// <summary>Objective options (CFG dropout, mask schedule and weighting).</summary>
    [JsonPropertyName("objective")] public ObjectiveOptions Objective { get; init; } = new();

    /// <summary>The warmup <c>snce train</c>, <c>snce study</c> and the library use when none is given: 5 % of the steps, at most 2,000.</summary>
    public static long DefaultWarmupSteps(long steps) => Math.Min(2000, steps / 20);

    /// <summary>The learning-rate schedule these settings define.</summary>
    [JsonIgnore] public LrSchedule Schedule => new(Lr, WarmupSteps, Steps, MinLrRatio);

    /// <summary>Throws naming the bad value.</summary>
    public void Validate()
    {
        if (Steps <= 0) throw new ArgumentException($"steps must be positive (got {Steps})");
        if (Batch <= 0) throw new ArgumentException($"batch size must be positive (got {Batch})");
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw new ArgumentException($"EMA decay must be in [0, 1) (got {EmaDecay})");
        if (CheckpointEvery <= 0 || LogEvery <= 0 || ValidateEvery < 0 || ValidationBatches < 0)
            throw new ArgumentException("checkpoint/log intervals must be positive, validation interval and batches ≥ 0");
        Schedule.Validate();
        AdamW.Validate();
        Objective.Validate();
    }
}

/// <summary>Limits of one invocation of a (possibly resumed) run, for both trainers (<see cref="Trainer"/>, <c>TokenizerTrainer.Train</c>).</summary>
/// <param name="MaxSteps">Stop when the global step reaches this (≤ the configured steps); null = run to the end.</param>
/// <param name="TimeLimit">Stop (and save) once this much wall time has passed in this invocation.</param>
public sealed record RunLimits(long? MaxSteps = null, TimeSpan? TimeLimit = null);
