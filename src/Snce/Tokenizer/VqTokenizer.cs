using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// A forward pass's result: <paramref name="Reconstruction"/> [B, C, H, W] (model range, about [−1, 1]),
/// <paramref name="Indices"/> [B, T] int64 (raster order), <paramref name="QuantizerLoss"/> scalar,
/// <paramref name="Latents"/> [B, T, D] (the encoder's output before quantization).
/// </summary>
public sealed record TokenizerOutput(Tensor Reconstruction, Tensor Indices, Tensor QuantizerLoss, Tensor Latents);

/// <summary>
/// The VQ tokenizer: <see cref="Encoder"/> → <see cref="VectorQuantizer"/> → <see cref="Decoder"/>. Images are
/// [B, C, H, W] in [−1, 1] (<see cref="Data.ImageDataset.ToModelRange"/>); tokens are [B, T] with T = GridSize²
/// in raster order. Built from a <see cref="TokenizerConfig"/> alone, so a checkpoint's config rebuilds it.
/// </summary>
public sealed class VqTokenizer : nn.Module<Tensor, TrainingStep?, TokenizerOutput>
{
    private readonly Encoder encoder;
    private readonly VectorQuantizer quantizer;
    private readonly Decoder decoder;

    /// <summary>Builds encoder, quantizer (EMA or IBQ per <see cref="TokenizerConfig"/>) and decoder, freshly initialized; throws on an invalid config.</summary>
    public VqTokenizer(TokenizerConfig config) : base(nameof(VqTokenizer))
    {
        Config = config.Validate();
        encoder = new Encoder(config);
        quantizer = VectorQuantizer.Create(config);
        decoder = new Decoder(config);
        RegisterComponents();
    }

    /// <summary>The validated configuration the tokenizer was built from (what its checkpoint stores).</summary>
    public TokenizerConfig Config { get; }
    /// <summary>The codebook and quantization rule between encoder and decoder.</summary>
    public VectorQuantizer Quantizer => quantizer;
    /// <summary>T, tokens per image: the latent grid's height × width.</summary>
    public int TokensPerImage => Config.TokensPerImage;


    /// <summary>Encoder + quantizer + decoder. With <paramref name="step"/> (training mode) the quantizer also records usage and, for EMA, updates the codebook.</summary>
    public override TokenizerOutput forward(Tensor images, TrainingStep? step)
    {
        using var scope = NewDisposeScope();
        var z = Latents(images);                                   // [B, T, D]
        var (b, t, d) = (z.shape[0], z.shape[1], z.shape[2]);
        var q = quantizer.forward(z.reshape(b * t, d), step);
        var recon = DecodeCodes(q.Quantized.view(b, t, d));
        return new TokenizerOutput(recon.MoveToOuterDisposeScope(), q.Indices.view(b, t).MoveToOuterDisposeScope(),
            q.Loss.MoveToOuterDisposeScope(), z.MoveToOuterDisposeScope());
    }

    /// <summary>Encoder output before quantization: images [B, C, H, W] → latents [B, T, D].</summary>
    public Tensor Latents(Tensor images)
    {
        CheckImages(images);
        using var scope = NewDisposeScope();
        var h = encoder.forward(Pad(images));                      // [B, D, g, g]
        return h.flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>Images [B, C, H, W] → token indices [B, T] int64 (no gradient).</summary>
    public Tensor Tokenize(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var z = Latents(images);
        return quantizer.Indices(z.flatten(0, 1)).view(z.shape[0], z.shape[1]).MoveToOuterDisposeScope();
    }

    /// <summary>Token indices [B, T] → images [B, C, H, W].</summary>
    public Tensor Decode(Tensor indices)
    {
        using var scope = NewDisposeScope();
        return DecodeCodes(quantizer.Lookup(indices)).MoveToOuterDisposeScope();
    }

    /// <summary>Code vectors [B, T, D] (raster order) → images [B, C, H, W].</summary>
    public Tensor DecodeCodes(Tensor codes)
    {
        using var scope = NewDisposeScope();
        var (b, t, d) = (codes.shape[0], codes.shape[1], codes.shape[2]);
        var g = Config.GridSize;
        if (t != g * g || d != Config.CodeDim)
            throw new ArgumentException($"expected codes [B, {g * g}, {Config.CodeDim}], got [{string.Join(", ", codes.shape)}]");
        var grid = codes.transpose(1, 2).reshape(b, d, g, g);
        return Crop(decoder.forward(grid)).MoveToOuterDisposeScope();
    }

    int PadBefore => (Config.WorkSize - Config.ImageSize) / 2;

    /// <summary>Edge-replicates the border up to WorkSize (e.g. 28 → 32): background stays background for both black (MNIST) and white (emoji) images.</summary>
    Tensor Pad(Tensor images)
    {
        var total = Config.WorkSize - Config.ImageSize;
        if (total == 0) return images.alias();
        var (a, b) = (PadBefore, total - PadBefore);
        return nn.functional.pad(images, [a, b, a, b], PaddingModes.Replicate);
    }

    Tensor Crop(Tensor images) => Config.WorkSize == Config.ImageSize ? images.alias()
        : images.narrow(2, PadBefore, Config.ImageSize).narrow(3, PadBefore, Config.ImageSize);

    void CheckImages(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != Config.Channels || images.shape[2] != Config.ImageSize || images.shape[3] != Config.ImageSize)
            throw new ArgumentException(
                $"this tokenizer takes images [B, {Config.Channels}, {Config.ImageSize}, {Config.ImageSize}], got [{string.Join(", ", images.shape)}]");
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            encoder.Dispose(); quantizer.Dispose(); decoder.Dispose();
        }
        base.Dispose(disposing);
    }
}
