namespace Snce.Training;

/// <summary>
/// Why a trainer returned: the generator's <see cref="Trainer.Run"/> and the tokenizer's <c>TokenizerTrainer.Train</c> (which
/// stops with Completed, MaxSteps, TimeLimit or Cancelled; its non-finite loss throws <c>TrainingDivergedException</c>).
/// </summary>
public enum StopReason
{
    /// <summary>All configured steps are done.</summary>
    Completed,
    /// <summary>The invocation's --max-steps (<see cref="RunLimits.MaxSteps"/>) was reached.</summary>
    MaxSteps,
    /// <summary>The invocation's time limit (<see cref="RunLimits.TimeLimit"/>) passed (--time-limit; the tokenizer's --max-seconds); a checkpoint was saved.</summary>
    TimeLimit,
    /// <summary>Cancelled (Ctrl-C, SIGTERM): the step in flight finished and a checkpoint was saved.</summary>
    Cancelled,
    /// <summary>The loss became NaN or ±Inf; nothing was saved after it.</summary>
    NonFinite,
}

/// <summary>Progress reported after each step (metrics are null between log steps, which avoids device syncs).</summary>
/// <param name="Step">Steps done.</param>
/// <param name="TotalSteps">Configured steps.</param>
/// <param name="Lr">Learning rate of the step.</param>
/// <param name="Loss">Mean training loss since the last log, at log steps.</param>
/// <param name="Validation">Validation metrics, at validation steps.</param>
public sealed record TrainProgress(long Step, long TotalSteps, double Lr, double? Loss, ValidationMetrics? Validation);

/// <summary>The held-out metrics, over supervised positions.</summary>
/// <param name="Loss">The training loss (e.g. SNCE).</param>
/// <param name="HardCe">CE on the ground-truth token (nats).</param>
/// <param name="Accuracy">Top-1 token accuracy.</param>
/// <param name="Top5">Top-5 token accuracy.</param>
/// <param name="TargetEntropy">Mean H(q) of soft targets (so KL = Loss − H), or null for hard targets.</param>
/// <param name="Positions">Supervised positions evaluated.</param>
public sealed record ValidationMetrics(double Loss, double HardCe, double Accuracy, double Top5, double? TargetEntropy, long Positions);

/// <summary>How a run ended.</summary>
/// <param name="Reason">Why it stopped.</param>
/// <param name="Step">Steps done when it stopped.</param>
/// <param name="Message">What happened, for the user (e.g. the NaN diagnosis).</param>
/// <param name="LastCheckpointStep">Step of the checkpoint on disk, or null if none.</param>
public sealed record TrainResult(StopReason Reason, long Step, string Message, long? LastCheckpointStep);
