using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>Turns token grids into images: what a tokenizer's decoder offers the samplers' callers.</summary>
public interface ITokenDecoder : IDisposable
{
    /// <summary>Codes K the decoder knows (must equal the generator's).</summary>
    long CodebookSize { get; }

    /// <summary>ids [B, H, W] (int64) → images uint8 [B, C, H_img, W_img].</summary>
    Tensor Decode(Tensor ids);
}
