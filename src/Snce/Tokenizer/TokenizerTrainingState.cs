namespace Snce.Tokenizer;

/// <summary>A training report at one step (averages over the steps since the previous report).</summary>
public sealed record TokenizerProgress
{
    public required long Step { get; init; }
    public required long TotalSteps { get; init; }
    /// <summary>Total loss: reconstruction + quantizer terms.</summary>
    public required double Loss { get; init; }
    public required double ReconstructionLoss { get; init; }
    public required double QuantizerLoss { get; init; }
    /// <summary>PSNR (dB) of the training batches' reconstructions, clamped to the image range, from their mean MSE.</summary>
    public required double Psnr { get; init; }
    /// <summary>Share of codes selected in the last <see cref="UsageWindow"/> steps.</summary>
    public required double Utilization { get; init; }
    public required long UsageWindow { get; init; }
    public required double LearningRate { get; init; }
    public required double ImagesPerSecond { get; init; }
    public required double ElapsedSeconds { get; init; }
}

/// <summary>Why training stopped.</summary>
public enum TrainingStop { Completed, TimeLimit, Cancelled }

/// <summary>The trainer's state stored with a checkpoint (training.json): what a resumed run needs besides weights and optimizer.</summary>
public sealed record TokenizerTrainingState
{
    /// <summary>Optimizer steps done.</summary>
    public required long Step { get; init; }
    public required TokenizerTrainOptions Options { get; init; }
    /// <summary>The data set name or folder trained on.</summary>
    public required string Data { get; init; }
    /// <summary>The last progress report, if any.</summary>
    public TokenizerProgress? Last { get; init; }
    /// <summary>Training seconds summed over all runs that led to this checkpoint.</summary>
    public double TrainSeconds { get; init; }
}

/// <summary>What a call of <c>TokenizerTrainer.Train</c> did.</summary>
public sealed record TokenizerTrainSummary(long FirstStep, long LastStep, TrainingStop Stop, double Seconds, double ImagesPerSecond, TokenizerProgress? Last);

/// <summary>The loss became NaN or infinite; training stopped without writing a checkpoint for the bad state.</summary>
public sealed class TrainingDivergedException(long step, long? lastCheckpointStep)
    : Exception($"the loss became NaN or infinite at step {step}; training stopped. " +
        (lastCheckpointStep is { } s ? $"The last good checkpoint (step {s}) is kept; lower the learning rate and resume." : "No checkpoint was written; lower the learning rate and start again."))
{
    public long Step { get; } = step;
    public long? LastCheckpointStep { get; } = lastCheckpointStep;
}
