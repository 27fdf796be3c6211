using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>Plain cross-entropy on the ground-truth token: ℓ_i = logsumexp(x_i) − x_{i, t_i}. The baseline.</summary>
public sealed class CrossEntropyLoss : ITokenLoss, IDenseTargets
{
    /// <summary>A CE loss over a vocabulary of <paramref name="numCodes"/> codes.</summary>
    public CrossEntropyLoss(long numCodes)
    {
        if (numCodes < 1) throw new ArgumentException($"the codebook size must be ≥ 1, got {numCodes}");
        NumCodes = numCodes;
    }

    /// <inheritdoc/>
    public string Name => LossKind.CrossEntropy.Name();
    /// <summary>K, the number of codes (logits per row).</summary>
    public long NumCodes { get; }

    /// <inheritdoc/>
    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var tokens = LossInputs.Check(Name, logits, targets, NumCodes, latentDim: null);
        var x = logits.to_type(LossInputs.ComputeType(logits.dtype));
        var ce = x.logsumexp(1) - x.gather(1, tokens.unsqueeze(1)).squeeze(1);
        var loss = LossInputs.Reduce(ce, targets);
        var hard = LossInputs.Mean(ce, targets);
        return new LossOutput(loss.MoveToOuterDisposeScope(), hard.MoveToOuterDisposeScope(), null);
    }

    /// <summary>One-hot on the tokens, [N, K].</summary>
    public Tensor DenseTargets(TokenTargets targets, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        return nn.functional.one_hot(targets.Tokens.to_type(ScalarType.Int64), NumCodes).to_type(dtype).MoveToOuterDisposeScope();
    }
}
