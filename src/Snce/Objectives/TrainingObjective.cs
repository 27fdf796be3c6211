using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Objectives;

/// <summary>A batch of tokenized images on the training device.</summary>
/// <param name="Tokens">[B, T] int64 ids in raster order.</param>
/// <param name="Condition">The conditions [B, ...] (class ids [B] int64; −1 = none).</param>
/// <param name="Latents">[B, T, D] float encoder latents for latent-anchored SNCE, or null (code-anchored).</param>
public sealed record TokenBatch(Tensor Tokens, Tensor Condition, Tensor? Latents = null)
{
    /// <summary>
    /// True when the ids were range-checked where they came from (token shards are, when loaded): the objectives
    /// then tell the loss to skip its per-call value checks (<see cref="TokenTargets.CheckValues"/>), each a host
    /// read-back that stalls a GPU step. The trainer catches a non-finite loss itself, without a sync.
    /// </summary>
    public bool IdsChecked { get; init; }

    /// <summary>[B, T, k]: each position's k codes nearest its latent (ids int64, distances fp32), for latent-anchored top-k SNCE on shards without latents; or null.</summary>
    public NearestCodes? LatentNeighbors { get; init; }
}

/// <summary>What an objective computed: the loss and what validation metrics need.</summary>
/// <param name="Loss">The loss's output (value, hard CE, target entropy).</param>
/// <param name="Hidden">[N, d] hidden states of the rows given to the loss; their logits are <c>model.Logits(Hidden)</c>,
/// which the objective does not compute when the loss folds the head in (<see cref="IHiddenStateLoss"/>).</param>
/// <param name="Targets">[N] int64 ground-truth ids.</param>
/// <param name="Mask">[N] bool supervised rows, or null (all).</param>
public sealed record ObjectiveOutput(LossOutput Loss, Tensor Hidden, Tensor Targets, Tensor? Mask);

/// <summary>
/// Decides what the network sees and which positions are supervised (AR shift, masked corruption), then
/// hands logits and targets to any <see cref="ITokenLoss"/> (hidden states and the head to an <see cref="IHiddenStateLoss"/>,
/// so the [N, K] logits are never materialized). Knows no optimizer and no loop.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>The generator kind this objective trains.</summary>
    GeneratorKind Kind { get; }

    /// <summary>
    /// Runs the network on a batch and returns the loss. <paramref name="train"/> enables condition dropout
    /// (CFG); the masked corruption is random in both modes. Draws the host must know (the masked objective's mask
    /// ratios) come from the CPU <paramref name="generator"/>; the rest (positions, CFG dropout) is drawn on the batch's
    /// device from its default generator, which the caller seeds (<see cref="DeviceRandom.SeededDefault"/>; the trainer
    /// does per step) for a reproducible result.
    /// </summary>
    ObjectiveOutput Compute(TokenGenerator model, TokenBatch batch, ITokenLoss loss, Generator generator, bool train);
}

/// <summary>Creates the objective of a generator kind.</summary>
public static class ObjectiveFactory
{
    /// <summary>ar → <see cref="NextTokenObjective"/>, mask → <see cref="MaskedObjective"/>.</summary>
    public static ITrainingObjective Create(GeneratorKind kind, ObjectiveOptions options) => kind switch
    {
        GeneratorKind.Autoregressive => new NextTokenObjective(options),
        GeneratorKind.Masked => new MaskedObjective(options),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>
    /// Replaces conditions by the null one with probability p (classifier-free guidance training); the coin flips are
    /// drawn on the conditions' device from its default generator (only the device reads them).
    /// </summary>
    internal static Tensor DropConditions(IConditioning conditioning, Tensor condition, double p)
    {
        if (p <= 0) return condition.alias();
        var drop = DeviceRandom.DefaultUniform([condition.shape[0]], condition.device) < p;
        return conditioning.Drop(condition, drop);
    }

    /// <summary>
    /// The loss of hidden-state rows [N, d]: with the head folded into the loss when it takes hidden states
    /// (<see cref="IHiddenStateLoss"/>; no [N, K] logits), else on the head's logits. Same value and gradients either way.
    /// </summary>
    internal static LossOutput Loss(TokenGenerator model, Tensor hidden, ITokenLoss loss, TokenTargets targets) => loss is IHiddenStateLoss h
        ? h.ForwardLinear(hidden, model.OutputWeight, model.OutputBias, targets)
        : loss.Forward(model.Logits(hidden), targets);

    /// <summary>The loss targets of a batch: flat ids [N], flat latents (or latent neighbours [N, k]), mask and weights; values unchecked when the batch's ids were.</summary>
    internal static TokenTargets Targets(TokenBatch batch, Tensor flatTokens, Tensor? mask = null, Tensor? weights = null) =>
        new(flatTokens, FlatLatents(batch.Latents), mask, weights)
        {
            CheckValues = !batch.IdsChecked,
            LatentNeighbors = batch.LatentNeighbors is { } n ? new NearestCodes(n.Ids.reshape(-1, n.Ids.shape[^1]), n.Distances.reshape(-1, n.Distances.shape[^1])) : null,
        };

    /// <summary>Flattens [B, T, D] latents to [B·T, D] fp32 (null stays null).</summary>
    internal static Tensor? FlatLatents(Tensor? latents) =>
        latents?.reshape(-1, latents.shape[^1]).to_type(ScalarType.Float32);
}
