using Snce.Training;

namespace Snce.Tokenizer;

/// <summary>A training report at one step (averages over the steps since the previous report).</summary>
public sealed record TokenizerProgress
{
    /// <summary>The 1-based optimizer step this report closes.</summary>
    public required long Step { get; init; }
    /// <summary>The run's planned steps (<see cref="TokenizerTrainOptions.Steps"/>).</summary>
    public required long TotalSteps { get; init; }
    /// <summary>Total loss: reconstruction + quantizer terms.</summary>
    public required double Loss { get; init; }
    /// <summary>The pixel term (MSE or MAE per <see cref="TokenizerTrainOptions.Loss"/>, images in [−1, 1]).</summary>
    public required double ReconstructionLoss { get; init; }
    /// <summary>The quantizer's codebook + commitment terms (commitment only for EMA).</summary>
    public required double QuantizerLoss { get; init; }
    /// <summary>PSNR (dB) of the training batches' reconstructions, clamped to the image range, from their mean MSE.</summary>
    public required double Psnr { get; init; }
    /// <summary>Share of codes selected in the last <see cref="UsageWindow"/> steps.</summary>
    public required double Utilization { get; init; }
    /// <summary>Steps over which a code counts as used (also the EMA quantizer's dead-code horizon).</summary>
    public required long UsageWindow { get; init; }
    /// <summary>The learning rate of this step.</summary>
    public required double LearningRate { get; init; }
    /// <summary>Training throughput since the previous report (images / wall-clock second).</summary>
    public required double ImagesPerSecond { get; init; }
    /// <summary>Wall-clock seconds of this call of the trainer so far.</summary>
    public required double ElapsedSeconds { get; init; }
}

/// <summary>The trainer's state stored with a checkpoint (training.json): what a resumed run needs besides weights and optimizer.</summary>
public sealed record TokenizerTrainingState
{
    /// <summary>Optimizer steps done.</summary>
    public required long Step { get; init; }
    /// <summary>The options the run was started with; a resume keeps them.</summary>
    public required TokenizerTrainOptions Options { get; init; }
    /// <summary>The data set name or folder trained on.</summary>
    public required string Data { get; init; }
    /// <summary>The last progress report, if any.</summary>
    public TokenizerProgress? Last { get; init; }
    /// <summary>Training seconds summed over all runs that led to this checkpoint.</summary>
    public double TrainSeconds { get; init; }
}

/// <summary>What a call of <c>TokenizerTrainer.Train</c> did.</summary>
/// <param name="FirstStep">The first step this call trained.</param>
/// <param name="LastStep">The last step it trained.</param>
/// <param name="Stop">Why it stopped: <see cref="StopReason.Completed"/> (the planned steps), <see cref="StopReason.MaxSteps"/>
/// (the caller's <see cref="RunLimits.MaxSteps"/>), <see cref="StopReason.TimeLimit"/> or <see cref="StopReason.Cancelled"/>
/// (a checkpoint was written; resume continues). A loss
/// that is not finite throws <see cref="TrainingDivergedException"/> instead.</param>
/// <param name="Seconds">Wall-clock seconds of the call.</param>
/// <param name="ImagesPerSecond">Training throughput of the call.</param>
/// <param name="Last">The last progress report, if any.</param>
public sealed record TokenizerTrainSummary(long FirstStep, long LastStep, StopReason Stop, double Seconds, double ImagesPerSecond, TokenizerProgress? Last);

/// <summary>The loss became NaN or infinite; training stopped without writing a checkpoint for the bad state.</summary>
public sealed class TrainingDivergedException(long step, long? lastCheckpointStep)
    : Exception($"the loss became NaN or infinite at step {step}; training stopped. " +
        (lastCheckpointStep is { } s ? $"The last good checkpoint (step {s}) is kept; lower the learning rate and resume." : "No checkpoint was written; lower the learning rate and start again."))
{
    /// <summary>The 1-based step whose loss was not finite.</summary>
    public long Step { get; } = step;
    /// <summary>The step of the last checkpoint written before it, or null when none was.</summary>
    public long? LastCheckpointStep { get; } = lastCheckpointStep;

}
