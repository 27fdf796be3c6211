using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// EMA codebook (van den Oord et al. 2017, appendix A.1; Razavi et al. 2019): codes are running means of the latents
/// assigned to them, not parameters. Per training step, with n_k the count and s_k the sum of latents assigned to code k:
///   N_k ← λN_k + (1−λ)n_k,   S_k ← λS_k + (1−λ)s_k,   c_k = S_k / Ñ_k,   Ñ_k = (N_k + ε)/(ΣN + Kε)·ΣN  (Laplace smoothing).
/// Dead codes (unused for <see cref="VectorQuantizer.UsageWindow"/> steps) restart from random latents of the current
/// batch; at step 1 every code starts that way (a data-dependent init). The decoder gets z + sg(c − z) (straight-through);
/// the loss is β·‖z − sg(c)‖² (commitment only).
/// </summary>
/// <remarks>
/// Under the dot metric the effective codes are the l2-normalized EMA means ĉ_k = c_k/‖c_k‖ (the centroid step of
/// spherical k-means, Dhillon &amp; Modha 2001; unit-norm codes as in ViT-VQGAN, Yu et al. 2022): the plain mean is the
/// centroid of squared l2 only, and argmax z·c over unnormalized means let the longest codes win while latents followed
/// them (measured: `snce tokenizer train --data mnist --codebook 1024 --metric dot --steps 300` went from loss 0.30 at
/// step 75 to 83 at step 300, code norms 453–825, 4.9 % of codes used; docs/RESULTS.md section 4). The latents keep
/// their length, and the straight-through path goes through their direction, ẑ + sg(ĉ − ẑ): the decoder's input ĉ
/// does not change with ‖z‖, so the radial part of its gradient can never be met; passed to z as it is (z + sg(ĉ − z))
/// it pushes ‖z‖ up against the commitment loss (a tiny MNIST run: max ‖z‖ 4.1 after 150 steps, 1.8 through ẑ;
/// docs/tokenizers.md). The commitment term β‖z − sg(ĉ)‖² is then the only radial force on z, and keeps ‖z‖ near 1.
/// </remarks>
public sealed class EmaQuantizer : VectorQuantizer
{
    private readonly Tensor codebook;     // [K, D]
    private readonly Tensor cluster_size; // [K]    N_k
    private readonly Tensor embed_sum;    // [K, D] S_k
    private readonly Tensor restarted_at; // int64 [K]: step of the last restart (0 = never)

    /// <summary>Codes start as standard normal draws (replaced by batch latents at the first training step), N_k = 1.</summary>
    public EmaQuantizer(TokenizerConfig config) : base(nameof(EmaQuantizer), config)
    {
        var (k, d) = (config.CodebookSize, config.CodeDim);
        codebook = randn(k, d);
        cluster_size = ones(k);
        embed_sum = codebook.clone();
        restarted_at = zeros(k, dtype: ScalarType.Int64);
        RegisterComponents();
    }

    /// <summary>The EMA means c_k [K, D] (a buffer, not trained by the optimizer). Do not dispose it.</summary>
    public override Tensor Codebook => codebook;

    /// <summary>EMA cluster sizes N_k [K]. Do not dispose.</summary>
    public Tensor ClusterSize => cluster_size;
    /// <summary>EMA sums S_k [K, D]. Do not dispose.</summary>
    public Tensor EmbedSum => embed_sum;

    /// <summary>
    /// Quantizes latents z [N, D] to their nearest codes (straight-through); with <paramref name="step"/> in training mode
    /// also restarts dead codes and moves the EMA statistics towards this batch.
    /// </summary>
    public override QuantizerOutput forward(Tensor z, TrainingStep? step)

    {
        using var scope = NewDisposeScope();
        var zp = Prepare(z);
        var update = step is not null && training;
        if (update && step!.Step == 1) Restart(ones(CodebookSize, dtype: ScalarType.Bool, device: z.device), zp, step);
        var codes = Codes();
        var idx = Metric.Quantize(zp, codes);
        var selected = codes.index_select(0, idx);
        var through = IsDot ? nn.functional.normalize(zp, p: 2, dim: 1, eps: 1e-12) : zp; // the straight-through path (remarks)
        var quantized = through + (selected - through).detach();
        var loss = QuantizationLoss(zp, selected, codebookWeight: 0);
        if (update)
        {
            RecordUsage(idx, step!.Step);
            Update(zp, idx);
            RestartDead(zp, step);
        }
        return new QuantizerOutput(quantized.MoveToOuterDisposeScope(), idx.MoveToOuterDisposeScope(), loss.MoveToOuterDisposeScope());
    }

    /// <summary>One EMA step from latents z [N, D] assigned to codes idx [N].</summary>
    internal void Update(Tensor z, Tensor idx)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var decay = Config.EmaDecay;
        var zd = z.detach();
        var counts = zeros(CodebookSize, dtype: zd.dtype, device: zd.device).index_add_(0, idx, ones(idx.shape[0], dtype: zd.dtype, device: zd.device), 1);
        var sums = zeros_like(embed_sum).index_add_(0, idx, zd, 1);
        cluster_size.mul_(decay).add_(counts, alpha: 1 - decay);
        embed_sum.mul_(decay).add_(sums, alpha: 1 - decay);
        var total = cluster_size.sum();
        var smoothed = (cluster_size + Config.EmaEpsilon) / (total + CodebookSize * Config.EmaEpsilon) * total;
        codebook.copy_(embed_sum / smoothed.unsqueeze(1));
    }

    /// <summary>Restarts codes unused for the usage window (counted from their last use or restart).</summary>
    internal void RestartDead(Tensor z, TrainingStep step)
    {
        using var scope = NewDisposeScope();
        var window = UsageWindow(z.shape[0]);
        var dead = LastUsed.maximum(restarted_at).le(step.Step - window);
        Restart(dead, z, step);
    }

    /// <summary>Restarts the codes where <paramref name="mask"/> [K] is true from batch latents, with fresh EMA statistics (N = 1, S = c).</summary>
    void Restart(Tensor mask, Tensor z, TrainingStep step)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var fresh = ReplaceCodes(mask, z, step);
        embed_sum.copy_(where(mask.unsqueeze(1), fresh, embed_sum));
        cluster_size.copy_(where(mask, ones_like(cluster_size), cluster_size));
        restarted_at.masked_fill_(mask, step.Step);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            codebook.Dispose(); cluster_size.Dispose(); embed_sum.Dispose(); restarted_at.Dispose();
        }
        base.Dispose(disposing);
    }
}
