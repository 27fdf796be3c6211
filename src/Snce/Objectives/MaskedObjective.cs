using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Objectives;

/// <summary>
/// Masked discrete diffusion (MaskGIT; MDLM weighting as an option): per sequence draw r ~ U(0, 1 − ε), mask
/// ⌈γ(r)·T⌉ positions chosen uniformly, replace them by [MASK] and predict the originals. Only masked
/// positions are supervised.
/// </summary>
/// <remarks>
/// With <see cref="MaskWeighting.Elbo"/> each masked token of sequence b gets w(r_b) = −γ'(r_b)/γ(r_b) and the
/// loss is (1/(B·T)) Σ_b w(r_b) Σ_{i masked} ℓ_i — MDLM's continuous-time NELBO estimate per token. The
/// weights passed to the loss are rescaled by (#masked)/(B·T) because the loss divides by #masked.
/// </remarks>
public sealed class MaskedObjective(ObjectiveOptions options) : ITrainingObjective
{
    /// <inheritdoc/>
    public GeneratorKind Kind => GeneratorKind.Masked;

    /// <summary>
    /// The corruption: tokens [B, T] → (ids with [MASK], mask [B, T] bool, progress r [B]). Draws r, then the positions.
    /// </summary>
    public (Tensor Input, Tensor Mask, Tensor Progress) Corrupt(Tensor tokens, long maskToken, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (b, t) = (tokens.shape[0], tokens.shape[1]);
        var r = DeviceRandom.Uniform(generator, [b], tokens.device) * (1 - options.MinProgress);   // [B]
        var count = (options.Schedule.MaskRatio(r) * t).ceil_().clamp_(1, t).to_type(ScalarType.Int64);
        var rank = DeviceRandom.Uniform(generator, [b, t], tokens.device).argsort(1).argsort(1);   // a uniform random order
        var mask = rank < count.unsqueeze(1);
        var input = tokens.masked_fill(mask, maskToken);
        return (input.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), r.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public ObjectiveOutput Compute(TokenGenerator model, TokenBatch batch, ITokenLoss loss, Generator generator, bool train)
    {
        if (model.Causal) throw new ArgumentException("the masked objective needs the masked (bidirectional) generator");
        using var scope = NewDisposeScope();
        var (b, t) = (batch.Tokens.shape[0], batch.Tokens.shape[1]);
        var condition = train ? ObjectiveFactory.DropConditions(model.Conditioning, batch.Condition, options.CfgDropout, generator) : batch.Condition;
        var (input, mask, r) = Corrupt(batch.Tokens, model.Config.MaskToken, generator);
        var logits = model.Forward(condition, input);                                          // [B, T, K]
        var flat = logits.reshape(-1, logits.shape[^1]);
        var flatMask = mask.reshape(-1);
        Tensor? weights = null;
        if (options.Weighting == MaskWeighting.Elbo)
        {
            var w = options.Schedule.ElboWeight(r).unsqueeze(1).expand(b, t);                 // [B, T]
            weights = (w * (mask.sum().to_type(ScalarType.Float32) / (b * t))).reshape(-1);
        }
        var targets = batch.Tokens.reshape(-1);
        var output = loss.Forward(flat, ObjectiveFactory.Targets(batch, targets, flatMask, weights));
        var result = new ObjectiveOutput(output, flat, targets, flatMask);
        NextTokenObjective.MoveOut(result);
        return result;
    }
}
