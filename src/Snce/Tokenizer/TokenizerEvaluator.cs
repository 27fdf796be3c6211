using System.Diagnostics;
using Snce.Data;
using Snce.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// A tokenizer's quality on a set of images (usually the validation split): mean per-image PSNR and SSIM of
/// reconstructions (clamped to the image range, on [0, 1]), codebook utilization (share of the K codes used at
/// least once) and code perplexity exp(H) of the code-usage distribution (K when every code is used equally,
/// 1 when one code takes everything), plus encode throughput (encoder + quantization).
/// </summary>
public sealed record TokenizerEvaluation
{
    /// <summary>Mean per-image PSNR of the reconstructions in dB (higher is better).</summary>
    public required double Psnr { get; init; }
    /// <summary>Mean per-image SSIM of the reconstructions, at most 1 (identical images).</summary>
    public required double Ssim { get; init; }
    /// <summary><see cref="CodesUsed"/> / <see cref="CodebookSize"/>, in (0, 1].</summary>
    public required double Utilization { get; init; }
    /// <summary>exp(H) of the code-usage distribution, in [1, K].</summary>
    public required double Perplexity { get; init; }
    /// <summary>K, the tokenizer's number of codes.</summary>
    public required int CodebookSize { get; init; }
    /// <summary>Distinct codes selected at least once over the set.</summary>
    public required long CodesUsed { get; init; }
    /// <summary>Images measured.</summary>
    public required long Images { get; init; }
    /// <summary>T, tokens per image.</summary>
    public required int TokensPerImage { get; init; }

    /// <summary>Tokens produced per second by encoder + nearest-code search, measured over the whole set (device synchronized at the end).</summary>
    public required double EncodeTokensPerSecond { get; init; }
}

/// <summary>Measures a tokenizer (<see cref="TokenizerEvaluation"/>) and produces reconstructions.</summary>
public static class TokenizerEvaluator
{
    /// <summary>Evaluates <paramref name="model"/> on uint8 images [M, C, H, W] (any device; batches move to the model's device).</summary>
    public static TokenizerEvaluation Evaluate(VqTokenizer model, Tensor images, int batchSize = 256)
    {
        var m = images.shape[0];
        if (m == 0) throw new ArgumentException("no images to evaluate (is the validation split empty?)");
        var device = model.Quantizer.Codebook.device;
        var k = model.Config.CodebookSize;
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // Warm up (kernel selection, allocator) outside the timed pass.
        model.Tokenize(ImageDataset.ToModelRange(images.narrow(0, 0, Math.Min(batchSize, m)).to(device))).Dispose();
        var tokens = empty(m, model.TokensPerImage, dtype: ScalarType.Int64, device: device);
        var clock = Stopwatch.StartNew();
        for (long i = 0; i < m; i += batchSize)
        {
            using var batch = NewDisposeScope();
            var len = Math.Min(batchSize, m - i);
            tokens.narrow(0, i, len).copy_(model.Tokenize(ImageDataset.ToModelRange(images.narrow(0, i, len).to(device))));
        }
        var counts = tokens.flatten().bincount(null, k);
        var used = counts.gt(0).sum().item<long>(); // synchronizes: the encode pass is done
        var encodeSeconds = clock.Elapsed.TotalSeconds;
        var psnr = zeros(1, dtype: ScalarType.Float64, device: device);
        var ssim = zeros(1, dtype: ScalarType.Float64, device: device);
        for (long i = 0; i < m; i += batchSize)
        {
            using var batch = NewDisposeScope();
            var len = Math.Min(batchSize, m - i);
            var x = ToUnit(images.narrow(0, i, len).to(device));
            var y = model.Decode(tokens.narrow(0, i, len)).clamp(-1, 1).add(1).div(2);
            psnr.add_(ReconstructionQuality.Psnr(x, y).to(ScalarType.Float64).sum());
            ssim.add_(ReconstructionQuality.Ssim(x, y).to(ScalarType.Float64).sum());
        }
        var (utilization, perplexity) = CodeUsage(counts);
        return new TokenizerEvaluation
        {
            Psnr = psnr.item<double>() / m,
            Ssim = ssim.item<double>() / m,
            Utilization = utilization,
            Perplexity = perplexity,
            CodebookSize = k,
            CodesUsed = used,
            Images = m,
            TokensPerImage = model.TokensPerImage,
            EncodeTokensPerSecond = m * model.TokensPerImage / Math.Max(1e-9, encodeSeconds),
        };
    }

    /// <summary>Utilization (share of codes with a nonzero count) and perplexity exp(−Σ p log p) from code counts [K].</summary>
    public static (double Utilization, double Perplexity) CodeUsage(Tensor counts)
    {
        using var scope = NewDisposeScope();
        var c = counts.to(ScalarType.Float64);
        var total = c.sum();
        var p = c / total.clamp_min(1);
        var entropy = -(p * p.clamp_min(1e-300).log()).sum();
        return (c.gt(0).to(ScalarType.Float64).mean().item<double>(), entropy.exp().item<double>());
    }

    /// <summary>Reconstructions of uint8 images [M, C, H, W] → uint8 [M, C, H, W] on the CPU (through the tokens: encode, quantize, decode).</summary>
    public static Tensor Reconstruct(VqTokenizer model, Tensor images, int batchSize = 256)
    {
        var device = model.Quantizer.Codebook.device;
        model.eval();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var parts = new List<Tensor>();
        for (long i = 0; i < images.shape[0]; i += batchSize)
        {
            var x = ImageDataset.ToModelRange(images.narrow(0, i, Math.Min(batchSize, images.shape[0] - i)).to(device));
            parts.Add(ImageDataset.FromModelRange(model.Decode(model.Tokenize(x))).cpu());
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    static Tensor ToUnit(Tensor uint8Images) => uint8Images.to(ScalarType.Float32).div(255.0);
}
