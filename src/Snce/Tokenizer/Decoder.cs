using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Snce.Tokenizer;

/// <summary>
/// Mirror of <see cref="Encoder"/>: code vectors [B, D, g, g] → images [B, C, g·2^L, g·2^L] (unbounded; the
/// target range is [−1, 1]). 3×3 conv from D, a middle residual block, per level (deepest first) residual
/// blocks and a nearest ×2 upsample + conv between levels, GroupNorm + SiLU + 3×3 conv to C channels.
/// </summary>
public sealed class Decoder : Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly ResidualBlock mid;
    private readonly Sequential up;
    private readonly GroupNorm norm_out;
    private readonly Conv2d conv_out;

    /// <summary>Builds the layers mirroring <see cref="Encoder"/> for the same config (PyTorch's default init).</summary>
    public Decoder(TokenizerConfig config) : base(nameof(Decoder))
    {
        var groups = config.NormGroups;
        var widths = config.ChannelMultipliers.Select(m => (long)config.BaseChannels * m).ToArray();
        var ch = widths[^1];
        conv_in = Conv2d(config.CodeDim, ch, 3, padding: 1);
        mid = new ResidualBlock(ch, ch, groups);
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        for (var level = widths.Length - 1; level >= 0; level--)
        {
            for (var b = 0; b < config.ResBlocksPerLevel; b++)
            {
                layers.Add(($"l{level}_res{b}", new ResidualBlock(ch, widths[level], groups)));
                ch = widths[level];
            }
            if (level > 0) layers.Add(($"l{level}_up", new Upsample(ch)));
        }
        up = Sequential(layers);
        norm_out = Normalization.GroupNorm(groups, ch);
        conv_out = Conv2d(ch, config.Channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>code vectors [B, D, g, g] → images [B, C, g·2^(levels − 1), g·2^(levels − 1)], unbounded (trained towards [−1, 1]).</summary>
    public override Tensor forward(Tensor codes)

    {
        using var scope = NewDisposeScope();
        var h = up.forward(mid.forward(conv_in.forward(codes)));
        return conv_out.forward(functional.silu(norm_out.forward(h))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv_in.Dispose(); mid.Dispose(); up.Dispose(); norm_out.Dispose(); conv_out.Dispose();
        }
        base.Dispose(disposing);
    }
}
