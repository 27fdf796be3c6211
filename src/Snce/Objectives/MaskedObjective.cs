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
    /// The corruption: tokens [B, T] → (ids with [MASK], mask [B, T] bool, progress r [B]). Draws r from the CPU
    /// <paramref name="generator"/>, then the positions on the tokens' device from its default generator: seed that one
    /// (<see cref="DeviceRandom.SeededDefault"/>, as the trainer does per step) for a reproducible corruption.
    /// </summary>
    public (Tensor Input, Tensor Mask, Tensor Progress) Corrupt(Tensor tokens, long maskToken, Generator generator)
    {
        var c = CorruptCounted(tokens, maskToken, generator);
        return (c.Input, c.Mask, c.Progress);
    }

    /// <summary>
    /// <see cref="Corrupt"/> plus the number M of masked positions, known on the host without a device read-back.
    /// </summary>
    /// <remarks>
    /// r and the per-sequence counts stay on the CPU on purpose: M = Σ_b ⌈γ(r_b)·T⌉ sizes the gathered rows
    /// (<see cref="MaskedRows"/>), so the host must know it before it queues the loss. Drawn on the device, r would have
    /// to be read back (a sync per step). So r is the one draw of the step made on the host: B numbers, sent with the
    /// counts in one pinned non-blocking copy ([2, B] fp32; counts ≤ T are exact in fp32). The [B, T] uniforms that
    /// pick the positions are only read by the device, so they are drawn there (no copy).
    /// </remarks>
    internal (Tensor Input, Tensor Mask, Tensor Progress, long Masked) CorruptCounted(Tensor tokens, long maskToken, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (b, t) = (tokens.shape[0], tokens.shape[1]);
        var r = DeviceRandom.Uniform(generator, [b], CPU) * (1 - options.MinProgress);              // [B] fp32, on the CPU
        var count = (options.Schedule.MaskRatio(r) * t).ceil_().clamp_(1, t);                       // [B], integers as fp32
        var masked = count.to_type(ScalarType.Int64).sum().item<long>();                              // M, a CPU read
        var sent = DeviceRandom.ToDevice(stack([r, count]), tokens.device);                         // [2, B]: the step's one host→device copy
        var rank = DeviceRandom.DefaultUniform([b, t], tokens.device).argsort(1).argsort(1);        // a uniform random order, drawn on the device
        var mask = rank < sent[1].to_type(ScalarType.Int64).unsqueeze(1);
        var input = tokens.masked_fill(mask, maskToken);
        return (input.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), sent[0].MoveToOuterDisposeScope(), masked);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A loss that folds the head in (<see cref="IHiddenStateLoss"/>) computes every row it is given, so it gets the masked
    /// rows only, gathered without a host sync; any other loss gets all rows and the mask (its logits are [B·T, K] anyway).
    /// The two give the same loss: unsupervised rows count for nothing in Σ_i m_i w_i ℓ_i / Σ_i m_i.
    /// </remarks>
    public ObjectiveOutput Compute(TokenGenerator model, TokenBatch batch, ITokenLoss loss, Generator generator, bool train)
    {
        if (model.Causal) throw new ArgumentException("the masked objective needs the masked (bidirectional) generator");
        using var scope = NewDisposeScope();
        var (b, t) = (batch.Tokens.shape[0], batch.Tokens.shape[1]);
        var condition = train ? ObjectiveFactory.DropConditions(model.Conditioning, batch.Condition, options.CfgDropout) : batch.Condition;
        var (input, mask, r, masked) = CorruptCounted(batch.Tokens, model.Config.MaskToken, generator);
        var hidden = model.ForwardHidden(condition, input);                                  // [B, T, d]
        var flat = hidden.reshape(-1, hidden.shape[^1]);
        var flatMask = mask.reshape(-1);
        Tensor? weights = null;
        if (options.Weighting == MaskWeighting.Elbo)
        {
            var w = options.Schedule.ElboWeight(r).unsqueeze(1).expand(b, t);                 // [B, T]
            weights = (w * (mask.sum().to_type(ScalarType.Float32) / (b * t))).reshape(-1);
        }
        var targets = ObjectiveFactory.Targets(batch, batch.Tokens.reshape(-1), flatMask, weights);
        if (loss is IHiddenStateLoss)
        {
            var rows = MaskedRows(flatMask, masked);                                          // [M]
            flat = flat.index_select(0, rows);
            targets = targets with
            {
                Tokens = targets.Tokens.index_select(0, rows), Latents = targets.Latents?.index_select(0, rows),
                Mask = null, Weights = targets.Weights?.index_select(0, rows),
            };
        }
        var output = ObjectiveFactory.Loss(model, flat, loss, targets);
        var result = new ObjectiveOutput(output, flat, targets.Tokens, targets.Mask);
        NextTokenObjective.MoveOut(result);
        return result;
    }

    /// <summary>
    /// The indices [M] of the true entries of <paramref name="mask"/> [N], ascending, given their count M: each masked row
    /// scatters its index to its rank among the masked rows, the others to a spare slot M that is dropped. Unlike nonzero,
    /// whose size the host must read back, this queues without a sync.
    /// </summary>
    internal static Tensor MaskedRows(Tensor mask, long count)
    {
        using var scope = NewDisposeScope();
        var n = mask.shape[0];
        var slot = (mask.to_type(ScalarType.Int64).cumsum(0) - 1).masked_fill(mask.logical_not(), count);
        var rows = zeros(count + 1, dtype: ScalarType.Int64, device: mask.device)
            .scatter_(0, slot, arange(n, dtype: ScalarType.Int64, device: mask.device));
        return rows.narrow(0, 0, count).MoveToOuterDisposeScope();
    }
}
