using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// The per-call checks and the one reduction rule that every <see cref="ITokenLoss"/> shares, so that
/// masks, weights and error messages mean the same thing whichever loss runs.
/// </summary>
internal static class LossInputs
{
    /// <summary>Math runs in float64 for float64 inputs, else in float32 (bf16/fp16 logits are upcast).</summary>
    public static ScalarType ComputeType(params ScalarType[] types) =>
        types.Contains(ScalarType.Float64) ? ScalarType.Float64 : ScalarType.Float32;

    public static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";

    /// <summary>
    /// Validates logits [N, K], tokens [N] in [0, K), latents [N, D] (when <paramref name="latentDim"/> is given,
    /// i.e. the loss is latent-anchored), mask [N] bool and weights [N] float. Returns the tokens as int64.
    /// Every row, supervised or not, must hold a valid token id. The value checks (ids, finiteness) are skipped when
    /// <see cref="TokenTargets.CheckValues"/> is off; the shape checks never are.
    /// </summary>
    public static Tensor Check(string loss, Tensor logits, TokenTargets targets, long numCodes, long? latentDim)
    {
        if (logits.dim() != 2 || logits.shape[1] != numCodes)
            throw new ArgumentException($"{loss}: logits must be [N, K] with K = {numCodes} (the codebook size), got {Shape(logits)}");
        if (!logits.is_floating_point())
            throw new ArgumentException($"{loss}: logits must be a float tensor, got {logits.dtype}");
        var n = logits.shape[0];
        var tokens = targets.Tokens;
        if (tokens.dim() != 1 || tokens.shape[0] != n)
            throw new ArgumentException($"{loss}: tokens must be [N] with N = {n} (the logits' rows), got {Shape(tokens)}");
        if (tokens.is_floating_point() || tokens.dtype == ScalarType.Bool)
            throw new ArgumentException($"{loss}: tokens must be integer ids (int64), got {tokens.dtype}");
        var ids = tokens.to_type(ScalarType.Int64);
        if (n > 0 && targets.CheckValues)
        {
            using var scope = NewDisposeScope();
            var (lo, hi) = (ids.min().item<long>(), ids.max().item<long>());
            if (lo < 0 || hi >= numCodes)
                throw new ArgumentException($"{loss}: token ids must be in [0, {numCodes}) for a codebook of K = {numCodes}, found {(lo < 0 ? lo : hi)}");
            if (!logits.detach().isfinite().all().item<bool>())
                throw new ArgumentException($"{loss}: logits contain NaN or Inf (shape {Shape(logits)}); check the model's output before the loss");
        }
        if (latentDim is { } d)
        {
            if (targets.Latents is not { } z)
                throw new ArgumentException($"{loss}: latent-anchored targets need TokenTargets.Latents [N, D] = [{n}, {d}], but Latents is null (use anchor 'code' for pre-tokenized data)");
            if (z.dim() != 2 || z.shape[0] != n || z.shape[1] != d)
                throw new ArgumentException($"{loss}: latents must be [N, D] = [{n}, {d}] (logits' rows, codebook's dimension), got {Shape(z)}");
            if (!z.is_floating_point())
                throw new ArgumentException($"{loss}: latents must be a float tensor, got {z.dtype}");
        }
        if (targets.Mask is { } m && (m.dim() != 1 || m.shape[0] != n || m.dtype != ScalarType.Bool))
            throw new ArgumentException($"{loss}: mask must be [N] = [{n}] bool, got {Shape(m)} {m.dtype}");
        if (targets.Weights is { } w && (w.dim() != 1 || w.shape[0] != n || !w.is_floating_point()))
            throw new ArgumentException($"{loss}: weights must be [N] = [{n}] float, got {Shape(w)} {w.dtype}");
        return ids;
    }

    /// <summary>The documented loss: Σ_i m_i w_i ℓ_i / Σ_i m_i (0 when no row is supervised). Unsupervised rows get no gradient.</summary>
    public static Tensor Reduce(Tensor perRow, TokenTargets targets)
    {
        var weighted = targets.Weights is { } w ? perRow * w.to_type(perRow.dtype) : perRow;
        return Masked(weighted, targets);
    }

    /// <summary>Unweighted mean over supervised rows, detached: the metrics HardCe and TargetEntropy.</summary>
    public static Tensor Mean(Tensor perRow, TokenTargets targets) => Masked(perRow.detach(), targets);

    static Tensor Masked(Tensor perRow, TokenTargets targets)
    {
        if (targets.Mask is not { } m) return perRow.sum() / Math.Max(perRow.shape[0], 1);
        // where, not a product: a masked row's value (whatever it is) can never reach the sum or the gradient.
        var kept = where(m, perRow, zeros_like(perRow));
        return kept.sum() / m.sum().to_type(perRow.dtype).clamp_min(1);
    }
}
