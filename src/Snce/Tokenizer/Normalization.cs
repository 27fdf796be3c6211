using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>Normalization layers with their parameters initialized.</summary>
internal static class Normalization
{
    /// <summary>
    /// GroupNorm with weight = 1 and bias = 0. TorchSharp 0.107's <c>nn.GroupNorm</c> leaves its affine parameters
    /// uninitialized (whatever the allocator returns, NaN included; seen here 2026-11-28), so they are set explicitly.
    /// </summary>
    public static GroupNorm GroupNorm(long groups, long channels)
    {
        var norm = nn.GroupNorm(groups, channels);
        using (no_grad())
        {
            norm.weight!.fill_(1);
            norm.bias!.zero_();
        }
        return norm;
    }
}
