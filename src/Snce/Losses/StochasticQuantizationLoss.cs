using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>One random draw of the stochastic loss: the tokens trained on and which rows took the replacement branch.</summary>
/// <param name="Tokens">[N] int64: the drawn target per row.</param>
/// <param name="Replaced">[N] bool: rows whose nearest code was replaced (probability α); the draw may still pick the nearest itself.</param>
public sealed record StochasticDraw(Tensor Tokens, Tensor Replaced) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose() { Tokens.Dispose(); Replaced.Dispose(); }
}

/// <summary>
/// Stochastic quantization as a loss (RobustTok-style): with probability α the nearest code t_i is replaced by
/// one drawn uniformly from the δ codes nearest to the anchor (δ includes the nearest itself, so the token
/// actually changes with probability α(δ − 1)/δ), then hard CE on the drawn token. Its expectation is the CE
/// against (1 − α)·onehot(t_i) + α·uniform(top-δ), which <see cref="DenseTargets"/> returns: SNCE computes
/// such an expectation exactly, with a geometry-weighted target, instead of sampling it.
/// The draws are made on the targets' device from its default generator (only the device reads them, so nothing is
/// copied from the host); seed it (<see cref="DeviceRandom.SeededDefault"/>; the trainer does per step) to reproduce them.
/// </summary>
public sealed class StochasticQuantizationLoss : ITokenLoss, IDenseTargets, IDisposable
{
    readonly Tensor codebook;
    readonly Tensor? codeNeighbors; // code-anchored: [K, δ] ids, built once

    /// <summary>Stochastic quantization with replacement probability α ∈ [0, 1] among the top-δ (2 ≤ δ ≤ K) codes.</summary>
    public StochasticQuantizationLoss(Tensor codebook, Metric metric, double alpha, int delta, NeighborAnchor anchor)
    {
        if (codebook.dim() != 2 || !codebook.is_floating_point())
            throw new ArgumentException($"codebook must be a float [K, D] tensor, got {LossInputs.Shape(codebook)} {codebook.dtype}");
        var numCodes = codebook.shape[0];
        if (!(alpha >= 0 && alpha <= 1))
            throw new ArgumentException($"stochastic α (alpha) must be in [0, 1], got {alpha}");
        if (delta < 2 || delta > numCodes)
            throw new ArgumentException($"stochastic δ (delta) must be in [2, K = {numCodes}] (the nearest code counts as one of the δ), got {delta}");
        (Metric, Alpha, Delta, Anchor, NumCodes) = (metric, alpha, delta, anchor, numCodes);
        using var scope = NewDisposeScope();
        this.codebook = codebook.detach().DetachFromDisposeScope();
        if (anchor == NeighborAnchor.Code)
        {
            using var table = NeighborTargets.CodeTable(this.codebook, metric, delta);
            codeNeighbors = table.Ids.alias().DetachFromDisposeScope();
        }
    }

    /// <inheritdoc/>
    public string Name => LossKind.Stochastic.Name();
    /// <summary>The metric that ranks neighbors (the tokenizer's).</summary>
    public Metric Metric { get; }
    /// <summary>Probability of replacing the nearest code.</summary>
    public double Alpha { get; }
    /// <summary>Number of nearest codes a replacement is drawn from, the nearest included.</summary>
    public int Delta { get; }
    /// <summary>Neighbors of the latent, or of the ground-truth code.</summary>
    public NeighborAnchor Anchor { get; }
    /// <summary>K, the number of codes.</summary>
    public long NumCodes { get; }

    /// <summary>Draws the training tokens for one step, on the tokens' device from its default generator.</summary>
    public StochasticDraw Draw(TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var tokens = targets.Tokens.to_type(ScalarType.Int64);
        var neighbors = Neighbors(tokens, targets.Latents); // [N, δ]
        var n = tokens.shape[0];
        // 2N numbers per step, drawn where they are read: no host copy (TorchSharp 0.107 cannot make a CUDA generator, so
        // the device's default one, seeded by the caller: docs/torchsharp-notes.md).
        var replaced = rand([n], dtype: ScalarType.Float64, device: tokens.device) < Alpha;
        var pick = randint(0, Delta, [n], dtype: ScalarType.Int64, device: tokens.device);
        var drawn = where(replaced, neighbors.gather(1, pick.unsqueeze(1)).squeeze(1), tokens);
        return new StochasticDraw(drawn.MoveToOuterDisposeScope(), replaced.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var tokens = LossInputs.Check(Name, logits, targets, NumCodes, Anchor == NeighborAnchor.Latent ? codebook.shape[1] : null);
        var draw = Draw(targets with { Tokens = tokens });
        var x = logits.to_type(LossInputs.ComputeType(logits.dtype));
        var lse = x.logsumexp(1);
        var perRow = lse - x.gather(1, draw.Tokens.unsqueeze(1)).squeeze(1);
        var hard = lse - x.gather(1, tokens.unsqueeze(1)).squeeze(1);
        var loss = LossInputs.Reduce(perRow, targets);
        return new LossOutput(loss.MoveToOuterDisposeScope(), LossInputs.Mean(hard, targets).MoveToOuterDisposeScope(), null);
    }

    /// <summary>The expected target (1 − α)·onehot(t_i) + α/δ on each of the top-δ codes, [N, K].</summary>
    public Tensor DenseTargets(TokenTargets targets, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var tokens = targets.Tokens.to_type(ScalarType.Int64);
        var neighbors = Neighbors(tokens, targets.Latents);
        var t = zeros(tokens.shape[0], NumCodes, dtype: dtype, device: tokens.device);
        t.scatter_add_(1, neighbors, full(neighbors.shape[0], Delta, Alpha / Delta, dtype: dtype, device: tokens.device));
        t.scatter_add_(1, tokens.unsqueeze(1), full(tokens.shape[0], 1, 1 - Alpha, dtype: dtype, device: tokens.device));
        return t.MoveToOuterDisposeScope();
    }

    /// <summary>The δ codes nearest to each anchor, [N, δ] int64.</summary>
    Tensor Neighbors(Tensor tokens, Tensor? latents)
    {
        if (codeNeighbors is { } table) return table.index_select(0, tokens);
        if (latents is null)
            throw new ArgumentException("stochastic: latent-anchored neighbors need TokenTargets.Latents [N, D], but Latents is null");
        using var nearest = NeighborTargets.Nearest(latents, codebook, Metric, Delta);
        return nearest.Ids.alias();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        codebook.Dispose();
        codeNeighbors?.Dispose();
    }
}
