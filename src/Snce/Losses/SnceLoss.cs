using static TorchSharp.torch;

namespace Snce.Losses;

/// <summary>
/// SNCE (reference implementation): cross-entropy against the stochastic-neighbor target
/// q(k | z_i) = softmax_k(−d(z_i, c_k)/τ), ℓ_i = −Σ_k q(k | z_i) log p_k(x_i). KL(q‖p) = ℓ − H(q), so
/// <see cref="LossOutput.TargetEntropy"/> (mean H(q), nats) is the optimum. Full codebook: materializes log p and
/// q as [N, K]. Top-k: ℓ_i = logsumexp(x_i) − Σ_{j ≤ k} q_ij x_{i, id_ij}, touching only k logits per row.
/// Math in float64 for float64 logits, else float32. Targets are constants (no gradient to latents or codebook).
/// </summary>
public sealed class SnceLoss : ITokenLoss, IDenseTargets, IDisposable
{
    readonly Tensor codebook;
    readonly TopKTargets? codeTable; // code-anchored top-k: [K, k] ids and log q, built once

    /// <summary>
    /// SNCE with a given τ. <paramref name="codeNeighbors"/> optionally supplies a precomputed code-anchored
    /// neighbor table (e.g. a token shard's, [K, ≥k]); otherwise code-anchored top-k builds it here (O(K²·D) work, chunked).
    /// </summary>
    public SnceLoss(Tensor codebook, Metric metric, double tau, NeighborAnchor anchor = NeighborAnchor.Latent, int? topK = null,
        NearestCodes? codeNeighbors = null)
    {
        if (codebook.dim() != 2 || !codebook.is_floating_point())
            throw new ArgumentException($"codebook must be a float [K, D] tensor, got {LossInputs.Shape(codebook)} {codebook.dtype}");
        NeighborTargets.CheckTau(tau);
        var numCodes = codebook.shape[0];
        if (topK is { } k && (k < 1 || k > numCodes))
            throw new ArgumentException($"top-k must be in [1, K = {numCodes}], got k = {k}");
        (Metric, Tau, Anchor, TopK, NumCodes) = (metric, tau, anchor, topK, numCodes);
        using var scope = NewDisposeScope();
        // Held for the loss's lifetime: detached from any scope, so a caller's scope cannot free them under us.
        this.codebook = codebook.detach().DetachFromDisposeScope();
        if (anchor == NeighborAnchor.Code && topK is { } kc)
        {
            if (codeNeighbors is { } given && (given.Ids.shape[0] != numCodes || given.Ids.shape[1] < kc))
                throw new ArgumentException($"the code neighbor table must be [K, ≥k] = [{numCodes}, ≥{kc}], got {LossInputs.Shape(given.Ids)}");
            var table = codeNeighbors is { } g
                ? new NearestCodes(g.Ids.narrow(1, 0, kc).to_type(ScalarType.Int64), g.Distances.narrow(1, 0, kc))
                : NeighborTargets.CodeTable(this.codebook, metric, kc);
            codeTable = table.Targets(tau);
            codeTable.Ids.DetachFromDisposeScope();
            codeTable.LogProbs.DetachFromDisposeScope();
        }
    }

    /// <inheritdoc/>
    public string Name => LossKind.Snce.Name();
    /// <summary>The metric d that defines both the targets and the tokenizer's quantization.</summary>
    public Metric Metric { get; }
    /// <summary>The temperature τ in use (given, or found by calibration).</summary>
    public double Tau { get; }
    /// <summary>Latent- or code-anchored targets.</summary>
    public NeighborAnchor Anchor { get; }
    /// <summary>k of the truncated targets; null for the full codebook.</summary>
    public int? TopK { get; }
    /// <summary>K, the number of codes.</summary>
    public long NumCodes { get; }
    /// <summary>How τ was calibrated (target, achieved mean perplexity and spread), or null when τ was given.</summary>
    public TauCalibrationResult? Calibration { get; init; }

    /// <inheritdoc/>
    public LossOutput Forward(Tensor logits, TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var tokens = LossInputs.Check(Name, logits, targets, NumCodes, LatentsRead(targets) ? codebook.shape[1] : null);
        var ct = LossInputs.ComputeType(logits.dtype);
        var x = logits.to_type(ct);
        Tensor perRow, hard, entropy;
        if (TopK is null)
        {
            var logp = x.log_softmax(1);
            var logq = DenseLogTargets(tokens, targets, ct);
            perRow = -(logq.exp() * logp).sum(1);
            hard = -logp.gather(1, tokens.unsqueeze(1)).squeeze(1);
            entropy = NeighborTargets.Entropy(logq);
        }
        else
        {
            var sparse = SparseTargets(tokens, targets, ct);
            var lse = x.logsumexp(1);
            perRow = lse - (sparse.Probs() * x.gather(1, sparse.Ids)).sum(1);
            hard = lse - x.gather(1, tokens.unsqueeze(1)).squeeze(1);
            entropy = NeighborTargets.Entropy(sparse.LogProbs);
        }
        var loss = LossInputs.Reduce(perRow, targets);
        return new LossOutput(loss.MoveToOuterDisposeScope(), LossInputs.Mean(hard, targets).MoveToOuterDisposeScope(),
            LossInputs.Mean(entropy, targets).MoveToOuterDisposeScope());
    }

    /// <summary>q as a dense [N, K] distribution (zeros outside the top-k when truncated).</summary>
    public Tensor DenseTargets(TokenTargets targets, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var tokens = targets.Tokens.to_type(ScalarType.Int64);
        CheckAnchors(tokens, targets);
        var q = TopK is null
            ? DenseLogTargets(tokens, targets, dtype).exp()
            : SparseTargets(tokens, targets, dtype).ToDense(NumCodes, dtype);
        return q.to_type(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>q(t_i | z_i), the target mass on each row's own token, [N] (0 when truncation drops the token).</summary>
    public Tensor TargetMassOnTokens(TokenTargets targets)
    {
        using var scope = NewDisposeScope();
        var tokens = targets.Tokens.to_type(ScalarType.Int64);
        CheckAnchors(tokens, targets);
        var ct = LossInputs.ComputeType(codebook.dtype);
        Tensor mass;
        if (TopK is null) mass = DenseLogTargets(tokens, targets, ct).gather(1, tokens.unsqueeze(1)).squeeze(1).exp();
        else
        {
            var sparse = SparseTargets(tokens, targets, ct);
            mass = (sparse.Probs() * (sparse.Ids == tokens.unsqueeze(1)).to_type(ct)).sum(1);
        }
        return mass.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether the targets come from <see cref="TokenTargets.Latents"/>: latent anchors read them, except top-k targets whose
    /// latents are absent and whose stored neighbours (<see cref="TokenTargets.LatentNeighbors"/>) stand in for them.
    /// </summary>
    bool LatentsRead(TokenTargets targets) => Anchor == NeighborAnchor.Latent && !(targets.Latents is null && targets.LatentNeighbors is not null);

    void CheckAnchors(Tensor tokens, TokenTargets targets)
    {
        if (LatentsRead(targets) && targets.Latents is null)
            throw new ArgumentException("snce: latent-anchored targets need TokenTargets.Latents [N, D] (or, for top-k targets, LatentNeighbors), but both are null");
        if (tokens.numel() > 0 && (tokens.min().item<long>() < 0 || tokens.max().item<long>() >= NumCodes))
            throw new ArgumentException($"snce: token ids must be in [0, {NumCodes})");
    }

    /// <summary>The anchors z [N, D]: the latents, or the tokens' code vectors.</summary>
    Tensor Anchors(Tensor tokens, Tensor? latents) =>
        Anchor == NeighborAnchor.Latent ? latents!.detach() : codebook.index_select(0, tokens);

    Tensor DenseLogTargets(Tensor tokens, TokenTargets targets, ScalarType dtype)
    {
        if (!LatentsRead(targets) && Anchor == NeighborAnchor.Latent)
            throw new ArgumentException("snce: full-codebook targets need the latents (TokenTargets.Latents [N, D]); stored neighbours give top-k targets only (set top-k ≤ their k)");
        var z = Anchors(tokens, targets.Latents).to_type(dtype);
        return NeighborTargets.LogProbs(z, codebook.to_type(dtype), Metric, Tau);
    }

    TopKTargets SparseTargets(Tensor tokens, TokenTargets targets, ScalarType dtype)
    {
        if (codeTable is { } table)
        {
            var rows = table.Lookup(tokens);
            return rows with { LogProbs = rows.LogProbs.to_type(dtype) };
        }
        var k = TopK!.Value;
        if (!LatentsRead(targets) && Anchor == NeighborAnchor.Latent)
        {
            // The stored k' ≥ k nearest codes of each latent, nearest first: their first k are its top-k.
            var stored = targets.LatentNeighbors!;
            var n = tokens.shape[0];
            if (stored.Ids.dim() != 2 || stored.Ids.shape[0] != n || stored.Ids.shape[1] < k || !stored.Distances.shape.SequenceEqual(stored.Ids.shape)
                || stored.Ids.is_floating_point() || !stored.Distances.is_floating_point())
                throw new ArgumentException($"snce: latent neighbours must be ids (integer) and distances (float), both [N, ≥k] = [{n}, ≥{k}]; got {LossInputs.Shape(stored.Ids)} and {LossInputs.Shape(stored.Distances)}");
            using var top = new NearestCodes(stored.Ids.narrow(1, 0, k).to_type(ScalarType.Int64), stored.Distances.narrow(1, 0, k).to_type(dtype));
            return top.Targets(Tau);
        }
        return NeighborTargets.TopK(Anchors(tokens, targets.Latents).to_type(dtype), codebook.to_type(dtype), Metric, Tau, k);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        codebook.Dispose();
        codeTable?.Dispose();
    }
}
