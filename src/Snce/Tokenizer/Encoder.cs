using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Snce.Tokenizer;

/// <summary>
/// VQGAN-lite convolutional encoder (no attention, no GAN): images [B, C, S, S] (S = WorkSize, values in [−1, 1])
/// → latents [B, D, S/2^L, S/2^L]. conv_in, then per level ResBlocksPerLevel residual blocks and a stride-2
/// downsample between levels, one middle residual block, GroupNorm + SiLU + 3×3 conv to D channels.
/// </summary>
public sealed class Encoder : Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly Sequential down;
    private readonly ResidualBlock mid;
    private readonly GroupNorm norm_out;
    private readonly Conv2d conv_out;

    /// <summary>Builds the layers for the config's channel widths, levels and code dimension (PyTorch's default init).</summary>
    public Encoder(TokenizerConfig config) : base(nameof(Encoder))
    {
        var groups = config.NormGroups;
        var widths = config.ChannelMultipliers.Select(m => (long)config.BaseChannels * m).ToArray();
        conv_in = Conv2d(config.Channels, widths[0], 3, padding: 1);
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        var ch = widths[0];
        for (var level = 0; level < widths.Length; level++)
        {
            for (var b = 0; b < config.ResBlocksPerLevel; b++)
            {
                layers.Add(($"l{level}_res{b}", new ResidualBlock(ch, widths[level], groups)));
                ch = widths[level];
            }
            if (level < widths.Length - 1) layers.Add(($"l{level}_down", new Downsample(ch)));
        }
        down = Sequential(layers);
        mid = new ResidualBlock(ch, ch, groups);
        norm_out = Normalization.GroupNorm(groups, ch);
        conv_out = Conv2d(ch, config.CodeDim, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>images [B, C, S, S] in [−1, 1] → latents [B, D, g, g], g = S / 2^(levels − 1), before quantization.</summary>
    public override Tensor forward(Tensor images)

    {
        using var scope = NewDisposeScope();
        var h = mid.forward(down.forward(conv_in.forward(images)));
        return conv_out.forward(functional.silu(norm_out.forward(h))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv_in.Dispose(); down.Dispose(); mid.Dispose(); norm_out.Dispose(); conv_out.Dispose();
        }
        base.Dispose(disposing);
    }
}
