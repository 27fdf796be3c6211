using Snce.Data;
using Snce.Models;
using Snce.Sampling;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>
/// What an inpainting run produced, all on the CPU: <paramref name="SourceTokens"/> ids [N, T] of the input images,
/// <paramref name="Tokens"/> ids [N, T] after editing (equal to the source outside <paramref name="Region"/>),
/// <paramref name="Images"/> uint8 [N, C, H, W] decoded from them, and <paramref name="Reconstructions"/> uint8 [N, C, H, W]
/// decoded from the source tokens (what the tokenizer alone gives back: the ceiling inside the region, the floor outside).
/// </summary>
public sealed record InpaintingResult(Tensor SourceTokens, Tensor Tokens, Tensor Images, Tensor Reconstructions, TokenMask Region) : IDisposable
{
    /// <summary>Tokens outside the region that differ from the source: 0 by construction, counted to prove it.</summary>
    public long ChangedOutside()
    {
        using var scope = NewDisposeScope();
        var outside = Region.ToTensor().logical_not().unsqueeze(0);
        return ((SourceTokens != Tokens) & outside).sum().item<long>();
    }

    /// <summary>Per image, the editable tokens whose id differs from the source's → int64 [N].</summary>
    public Tensor ChangedInside()
    {
        using var scope = NewDisposeScope();
        return ((SourceTokens != Tokens) & Region.ToTensor().unsqueeze(0)).sum(1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        SourceTokens.Dispose(); Tokens.Dispose(); Images.Dispose(); Reconstructions.Dispose();
    }
}

/// <summary>
/// Inpainting and outpainting of images with a trained generator and its tokenizer: tokenize, regenerate the tokens of
/// the region (<see cref="GeneratorSampler.Inpaint"/>), keep every other token exactly, decode. The generator's
/// conditioning is whatever it was trained with (class ids today; a text condition plugs in the same way, as a tensor
/// whose first dimension is the batch).
/// </summary>
public static class ImageInpainting
{
    /// <summary>
    /// Edits <paramref name="images"/> uint8 [N, C, S, S] (the tokenizer's channels and side) in the token region
    /// <paramref name="region"/> under <paramref name="conditions"/> [N, ...]. Deterministic given <paramref name="generator"/>.
    /// </summary>
    public static InpaintingResult Run(TokenGenerator model, VqTokenizer tokenizer, Tensor images, TokenMask region, Tensor conditions,
        GeneratorSamplingOptions options, Generator generator)
    {
        CheckPair(model, tokenizer);
        var tc = tokenizer.Config;
        if (images.dtype != ScalarType.Byte || images.dim() != 4 || images.shape[1] != tc.Channels || images.shape[2] != tc.ImageSize || images.shape[3] != tc.ImageSize)
            throw new ArgumentException($"this tokenizer takes uint8 images [N, {tc.Channels}, {tc.ImageSize}, {tc.ImageSize}], got {images.dtype} [{string.Join(", ", images.shape)}]");
        if (region.GridHeight != model.Config.GridHeight || region.GridWidth != model.Config.GridWidth)
            throw new ArgumentException($"a {region.GridHeight}x{region.GridWidth} token region for a {model.Config.GridHeight}x{model.Config.GridWidth} generator");
        region.RequireEdit();
        var n = images.shape[0];
        if (conditions.shape[0] != n) throw new ArgumentException($"{conditions.shape[0]} conditions for {n} images");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = model.Device;
        var source = Tokenize(tokenizer, images.to(device), options.BatchSize);                          // [N, T]
        var editable = region.ToTensor().to(device).unsqueeze(0).expand(n, -1).contiguous();
        var tokens = GeneratorSampler.Inpaint(model, conditions, source, editable, options, generator);
        var result = new InpaintingResult(
            source.cpu().MoveToOuterDisposeScope(), tokens.cpu().MoveToOuterDisposeScope(),
            Decode(tokenizer, tokens, options.BatchSize).cpu().MoveToOuterDisposeScope(),
            Decode(tokenizer, source, options.BatchSize).cpu().MoveToOuterDisposeScope(), region);
        return result;
    }

    /// <summary>Throws when the tokenizer cannot decode what the generator makes.</summary>
    public static void CheckPair(TokenGenerator model, VqTokenizer tokenizer)
    {
        var (tc, gc) = (tokenizer.Config, model.Config);
        if (tc.CodebookSize != gc.CodebookSize || tc.GridSize != gc.GridHeight || tc.GridSize != gc.GridWidth)
            throw new ArgumentException(
                $"the tokenizer has K = {tc.CodebookSize} codes on a {tc.GridSize}x{tc.GridSize} grid; the generator predicts K = {gc.CodebookSize} on {gc.GridHeight}x{gc.GridWidth}");
    }

    /// <summary>uint8 images [N, C, S, S] → ids [N, T], <paramref name="chunk"/> at a time.</summary>
    internal static Tensor Tokenize(VqTokenizer tokenizer, Tensor images, int chunk) =>
        InChunks(images, chunk, part => tokenizer.Tokenize(ImageDataset.ToModelRange(part)));

    /// <summary>ids [N, T] → uint8 images [N, C, S, S], <paramref name="chunk"/> at a time.</summary>
    internal static Tensor Decode(VqTokenizer tokenizer, Tensor ids, int chunk) =>
        InChunks(ids, chunk, part => ImageDataset.FromModelRange(tokenizer.Decode(part)));

    /// <summary><paramref name="map"/> over slices of at most <paramref name="chunk"/> rows of x [N, ...], concatenated along dim 0.</summary>
    static Tensor InChunks(Tensor x, int chunk, Func<Tensor, Tensor> map)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        for (long s = 0; s < x.shape[0]; s += chunk)
            parts.Add(map(x.narrow(0, s, Math.Min(chunk, x.shape[0] - s))));
        return cat(parts, 0).MoveToOuterDisposeScope();
    }
}
