using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// Label smoothing, SNCE's geometry-blind special case. Convention: the target puts 1 − ε on the true token
/// and ε/(K − 1) on EACH other code (so ε is exactly the off-target mass; PyTorch's label_smoothing=ε' instead
/// spreads ε' over all K codes, true one included: ε = ε'(K − 1)/K).
/// ℓ_i = −(1 − ε) log p_{t_i} − ε/(K − 1) Σ_{k ≠ t_i} log p_k.
/// </summary>
public sealed class LabelSmoothingLoss : ITokenLoss, IDenseTargets
{
    /// <summary>Label smoothing with off-target mass ε ∈ [0, 1) over K ≥ 2 codes.</summary>
    public LabelSmoothingLoss(long numCodes, double epsilon)
    {
        if (!(epsilon >= 0 && epsilon < 1))
            throw new ArgumentException($"label-smoothing ε (epsilon) must be in [0, 1), got {epsilon}");
        if (numCodes < 2) throw new ArgumentException($"label smoothing needs K ≥ 2 codes, got K = {numCodes}");
        (NumCodes, Epsilon) = (numCodes, epsilon);
    }

    /// <inheritdoc/>
    public string Name => LossKind.LabelSmoothing.Name();
    /// <summary>K, the number of codes.</summary>
    public long NumCodes { get; }
    /// <summary>Target mass moved off the true token, spread uniformly over the K − 1 others.</summary>
    public double Epsilon { get; }

    /// <summary>H(t) of the smoothed target in nats (the same for every row): the loss's optimum.</summary>
    public double TargetEntropy =>
        Epsilon == 0 ? 0 : -(1 - Epsilon) * Math.Log(1 - Epsilon) - Epsilon * Math.Log(Epsilon / (NumCodes - 1));

    /// <summary>
    /// The ε that gives label smoothing the same off-target mass as an SNCE loss: the mean over the supervised rows
    /// of <paramref name="sample"/> of 1 − q(t_i | z_i). Use it to build the matched baseline of a calibrated SNCE.
    /// </summary>
    public static double EpsilonMatching(SnceLoss snce, TokenTargets sample)
    {
        using var scope = NewDisposeScope();
        var offTarget = 1 - snce.TargetMassOnTokens(sample);
        return LossInputs.Mean(offTarget, sample).to_type(ScalarType.Float64).item<double>();
    }

    /// <inheritdoc/>
    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var tokens = LossInputs.Check(Name, logits, targets, NumCodes, latentDim: null);
        var ct = LossInputs.ComputeType(logits.dtype);
        var logp = logits.to_type(ct).log_softmax(1);
        var onTarget = logp.gather(1, tokens.unsqueeze(1)).squeeze(1);
        var offTarget = logp.sum(1) - onTarget;
        var perRow = -(1 - Epsilon) * onTarget - Epsilon / (NumCodes - 1) * offTarget;
        var loss = LossInputs.Reduce(perRow, targets);
        var hard = LossInputs.Mean(-onTarget, targets);
        var entropy = tensor(TargetEntropy, dtype: ct, device: logits.device);
        return new LossOutput(loss.MoveToOuterDisposeScope(), hard.MoveToOuterDisposeScope(), entropy.MoveToOuterDisposeScope());
    }

    /// <summary>(1 − ε) on the tokens, ε/(K − 1) elsewhere, [N, K].</summary>
    public Tensor DenseTargets(TokenTargets targets, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var tokens = targets.Tokens.to_type(ScalarType.Int64);
        var t = full(tokens.shape[0], NumCodes, Epsilon / (NumCodes - 1), dtype: dtype, device: tokens.device);
        t.scatter_(1, tokens.unsqueeze(1), full(tokens.shape[0], 1, 1 - Epsilon, dtype: dtype, device: tokens.device));
        return t.MoveToOuterDisposeScope();
    }
}
