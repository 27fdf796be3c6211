using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Snce.Tokenizer;

/// <summary>
/// Pre-activation residual block of VQGAN's convolutional encoder/decoder (Esser et al. 2021, "Taming
/// Transformers"): x + conv(SiLU(GN(conv(SiLU(GN(x)))))), with a 1×1 projection on the skip when the width changes.
/// [B, in, H, W] → [B, out, H, W].
/// </summary>
internal sealed class ResidualBlock : Module<Tensor, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly GroupNorm norm2;
    private readonly Conv2d conv2;
    private readonly Module<Tensor, Tensor> skip;

    public ResidualBlock(long inChannels, long outChannels, long groups) : base(nameof(ResidualBlock))
    {
        norm1 = Normalization.GroupNorm(groups, inChannels);
        conv1 = Conv2d(inChannels, outChannels, 3, padding: 1);
        norm2 = Normalization.GroupNorm(groups, outChannels);
        conv2 = Conv2d(outChannels, outChannels, 3, padding: 1);
        skip = inChannels == outChannels ? Identity() : Conv2d(inChannels, outChannels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.forward(functional.silu(norm1.forward(x)));
        h = conv2.forward(functional.silu(norm2.forward(h)));
        return (skip.forward(x) + h).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            norm1.Dispose(); conv1.Dispose(); norm2.Dispose(); conv2.Dispose(); skip.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>Stride-2 3×3 convolution: [B, C, H, W] → [B, C, H/2, W/2] (H, W even).</summary>
internal sealed class Downsample : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    public Downsample(long channels) : base(nameof(Downsample))
    {
        conv = Conv2d(channels, channels, 3, stride: 2, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => conv.forward(x);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) conv.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Nearest-neighbor ×2 upsampling followed by a 3×3 convolution (no checkerboard artifacts): [B, C, H, W] → [B, C, 2H, 2W].</summary>
internal sealed class Upsample : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    public Upsample(long channels) : base(nameof(Upsample))
    {
        conv = Conv2d(channels, channels, 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var up = functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return conv.forward(up).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) conv.Dispose();
        base.Dispose(disposing);
    }
}
