namespace Snce.Tokenizer;

/// <summary>
/// Named tokenizer sizes. All have two downsamples (28/32 px → 8×8 tokens, 64 px → 16×16).
/// Parameter counts (encoder + decoder, gray / RGB, without the K×D codebook) are in docs/tokenizers.md
/// and checked by a test; the codebook adds K × D.
/// </summary>
public static class TokenizerPresets
{
    /// <summary>For CPU tests: 16 base channels, D = 16, K = 256 (0.16 M parameters + codebook).</summary>
    public static TokenizerConfig Tiny => new()
    {
        BaseChannels = 16, ChannelMultipliers = [1, 2, 2], ResBlocksPerLevel = 1, NormGroups = 8, CodeDim = 16, CodebookSize = 256,
    };

    /// <summary>Fashion-MNIST / emoji on one GPU in a minute: 64 base channels, D = 64, K = 16,384 (2.5 M parameters + codebook 1.0 M).</summary>
    public static TokenizerConfig Small => new()
    {
        BaseChannels = 64, ChannelMultipliers = [1, 2, 2], ResBlocksPerLevel = 1, NormGroups = 32, CodeDim = 64, CodebookSize = 16384,
    };

    /// <summary>Longer runs: 128 base channels, two residual blocks per level, D = 64, K = 16,384 (15.1 M parameters + codebook 1.0 M).</summary>
    public static TokenizerConfig Base => new()
    {
        BaseChannels = 128, ChannelMultipliers = [1, 2, 2], ResBlocksPerLevel = 2, NormGroups = 32, CodeDim = 64, CodebookSize = 16384,
    };

    /// <summary>The preset names, for help and error text.</summary>
    public const string Allowed = "tiny, small, base";

    /// <summary>Looks a preset up by name; throws naming the allowed ones.</summary>
    public static TokenizerConfig Get(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "small" => Small,
        "base" => Base,
        _ => throw new ArgumentException($"unknown tokenizer preset '{name}'; use one of {Allowed}"),
    };
}
