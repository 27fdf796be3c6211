using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// What each supervised position should predict.
/// </summary>
/// <param name="Tokens">[N] int64: the ground-truth (nearest-code) token of each position.</param>
/// <param name="Latents">[N, D]: the encoder's continuous latent per position, for latent-anchored SNCE;
/// null means code-anchored (z = codebook[Tokens]).</param>
/// <param name="Mask">[N] bool: positions that are supervised; null means all.</param>
/// <param name="Weights">[N] float: per-position weights (e.g. MDLM's 1/t); null means 1.</param>
public sealed record TokenTargets(Tensor Tokens, Tensor? Latents = null, Tensor? Mask = null, Tensor? Weights = null)
{
    /// <summary>
    /// Each position's k codes nearest its latent and their distances (ids [N, k] int64, distances [N, k] float; a
    /// <c>--latents topk</c> shard's stored table): what latent-anchored top-k SNCE reads when <see cref="Latents"/> is null.
    /// </summary>
    public NearestCodes? LatentNeighbors { get; init; }

    /// <summary>
    /// Whether the loss checks the values (token ids in [0, K), finite logits) as well as the shapes. Each value check
    /// reads a result back to the host, which stalls a GPU step; callers whose tokens were checked when loaded and who
    /// watch the loss for NaN themselves (the generator objectives under <c>Trainer</c>) turn it off. Default: on.
    /// </summary>
    public bool CheckValues { get; init; } = true;
}

/// <summary>A loss value with the metrics every loss reports.</summary>
/// <param name="Loss">Scalar, differentiable: Σ_i m_i w_i ℓ_i / Σ_i m_i over supervised rows.</param>
/// <param name="HardCe">Scalar, detached: plain CE on the nearest code over the same rows (comparable across losses).</param>
/// <param name="TargetEntropy">Scalar, detached: mean H(q) of the soft target (nats), or null for hard targets; KL(q‖p) = Loss − H(q).</param>
public sealed record LossOutput(Tensor Loss, Tensor HardCe, Tensor? TargetEntropy)
{
    /// <summary>KL(q‖p) = SNCE − H(q) for soft targets (unweighted case); null for hard targets.</summary>
    public Tensor? Kl => TargetEntropy is null ? null : Loss.detach() - TargetEntropy;
}

/// <summary>
/// A token-level training loss: logits [N, K] + targets → mean loss and metrics. CE, label smoothing,
/// SNCE and stochastic quantization all implement this, so objectives and trainers never know which one runs.
/// </summary>
public interface ITokenLoss
{
    /// <summary>Name as on the command line (ce, label-smoothing, snce, stochastic).</summary>
    string Name { get; }

    /// <summary>Computes the loss; <paramref name="logits"/> is [N, K] (any float dtype; math in fp32 or better).</summary>
    LossOutput Forward(Tensor logits, TokenTargets targets);
}
