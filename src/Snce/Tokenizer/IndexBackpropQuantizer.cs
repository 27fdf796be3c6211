using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// IBQ quantizer (Shi et al. 2024): the codebook is a parameter trained by the optimizer; index backpropagation
/// (straight-through over a softmax on all K codes, <see cref="IndexBackpropFunction"/>) sends every code a gradient
/// at every step, which keeps large codebooks in use without restarts. Loss: ‖q − sg(z)‖² (through the straight-through
/// output q, so every code gets its gradient) + β·‖z − sg(c_idx)‖² + the code-entropy term.
/// </summary>
public sealed class IndexBackpropQuantizer : VectorQuantizer
{
    private readonly Parameter codebook;

    /// <summary>Elements per block of the recomputed softmax when <see cref="TokenizerConfig.IbqRowChunk"/> is 0 (auto).</summary>
    public const long BlockElements = 1L << 26;

    /// <summary>Codes start uniform in [−1/K, 1/K] (all logits near 0); with IbqDataInit they are replaced by batch latents at step 1.</summary>
    public IndexBackpropQuantizer(TokenizerConfig config) : base(nameof(IndexBackpropQuantizer), config)
    {
        // Small uniform init, as IBQ does: all logits start near 0, so the softmax spreads gradient over every code.
        var k = config.CodebookSize;
        codebook = new Parameter(empty(k, config.CodeDim).uniform_(-1.0 / k, 1.0 / k));
        RegisterComponents();
    }

    /// <summary>The code vectors [K, D], a parameter the optimizer trains. Do not dispose it.</summary>
    public override Tensor Codebook => codebook;

    /// <summary>
    /// Quantizes latents z [N, D] to their nearest codes; under gradients the output carries the softmax over all codes,
    /// so every code gets gradient. With <paramref name="step"/> in training mode it records usage.
    /// </summary>
    public override QuantizerOutput forward(Tensor z, TrainingStep? step)

    {
        using var scope = NewDisposeScope();
        var zp = Prepare(z);
        if (Config.IbqDataInit && step is { Step: 1 } && training)
            ReplaceCodes(ones(CodebookSize, dtype: ScalarType.Bool, device: z.device), zp, step).Dispose();
        var codes = Codes();
        var idx = Metric.Quantize(zp, codes);
        var differentiable = is_grad_enabled() && (zp.requires_grad || codes.requires_grad);
        var withEntropy = differentiable && Config.EntropyWeight > 0;
        var (q, entropy) = !differentiable ? (codes.index_select(0, idx), null)
            : Config.IbqRowChunk == -1 ? DenseIndexBackprop(zp, codes, idx, withEntropy)
            : Blocked(zp, codes, idx, withEntropy);
        // IBQ's "double quantization" loss: the codebook term goes through the straight-through output, so its gradient
        // also reaches every code through the softmax; the commitment term uses the selected codes.
        var loss = QuantizationLoss(zp, q, Config.CodebookWeight);
        if (entropy is not null) loss = loss + entropy * Config.EntropyWeight;
        if (step is not null && training) RecordUsage(idx, step.Step);
        return new QuantizerOutput(q.MoveToOuterDisposeScope(), idx.MoveToOuterDisposeScope(), loss.MoveToOuterDisposeScope());
    }

    long RowsPerBlock(long n) => Config.IbqRowChunk > 0 ? Config.IbqRowChunk : Math.Clamp(BlockElements / CodebookSize, 1, Math.Max(1, n));

    (Tensor, Tensor?) Blocked(Tensor z, Tensor codes, Tensor idx, bool withEntropy)
    {
        var outputs = IndexBackpropFunction.apply(z, codes, idx, Metric, Config.IbqTemperature, RowsPerBlock(z.shape[0]), withEntropy);
        return (outputs[0], withEntropy ? outputs[1] : null);
    }

    /// <summary>The reference form with autograd over the full [N, K] matrix: q = (onehot + p − sg(p)) @ C and E = mean H(p_i) − H(p̄).</summary>
    (Tensor, Tensor?) DenseIndexBackprop(Tensor z, Tensor codes, Tensor idx, bool withEntropy)
    {
        using var scope = NewDisposeScope();
        var logp = Metric.Distance(z, codes).div(-Config.IbqTemperature).log_softmax(1);
        var p = logp.exp();
        var hard = nn.functional.one_hot(idx, CodebookSize).to(p.dtype);
        var q = (hard + p - p.detach()).matmul(codes);
        Tensor? entropy = null;
        if (withEntropy)
        {
            var meanP = p.mean([0L]);
            entropy = -(p * logp).sum(1).mean() + (meanP * meanP.clamp_min(1e-30).log()).sum();
        }
        return (q.MoveToOuterDisposeScope(), entropy?.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) codebook.Dispose();
        base.Dispose(disposing);
    }
}
