using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>Everything a <see cref="Trainer"/> needs.</summary>
/// <param name="Model">The network to build.</param>
/// <param name="Training">Schedule, optimizer, cadence, seed.</param>
/// <param name="Loss">The resolved loss (every number fixed), recorded in checkpoints so a resumed run rebuilds the same loss.</param>
/// <param name="CreateLoss">Builds the loss (a stochastic one draws on the device, inside the trainer's seeded step scope).</param>
/// <param name="Train">The training split.</param>
/// <param name="Validation">The held-out split, or null.</param>
/// <param name="Data">Recorded in checkpoints.</param>
/// <param name="RunDir">Where checkpoint/, metrics.jsonl and tb/ go.</param>
/// <param name="Device">The device everything runs on.</param>
/// <param name="Sync">Gradient synchronization (data parallel); null = one process.</param>
/// <param name="Codebook">The tokenizer's codebook [K, D], for <see cref="EmbeddingInit.Codebook"/>; null when the model does not need it.</param>
public sealed record TrainerSetup(
    GeneratorConfig Model,
    TrainingConfig Training,
    ResolvedLoss Loss,
    Func<ITokenLoss> CreateLoss,
    TokenDataset Train,
    TokenDataset? Validation,
    GeneratorDataInfo Data,
    string RunDir,
    Device Device,
    IGradientSync? Sync = null,
    Tensor? Codebook = null);
