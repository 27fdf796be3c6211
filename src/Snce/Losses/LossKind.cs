using System.ComponentModel;
using System.Text.Json.Serialization;

namespace Snce.Losses;

/// <summary>Which token loss: the JSON names are the command line's and the manifest's.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LossKind>)), Description("loss")]
public enum LossKind
{
    /// <summary>Cross-entropy on the ground-truth token.</summary>
    [JsonStringEnumMemberName("ce")] CrossEntropy,
    /// <summary>Cross-entropy against (1 − ε) on the token and ε/(K − 1) on every other code.</summary>
    [JsonStringEnumMemberName("label-smoothing")] LabelSmoothing,
    /// <summary>Stochastic-neighbor cross-entropy: soft targets q(k|z) ∝ exp(−d(z, c_k)/τ).</summary>
    [JsonStringEnumMemberName("snce")] Snce,
    /// <summary>Stochastic quantization: the target token replaced, with probability α, by one of its δ nearest codes.</summary>
    [JsonStringEnumMemberName("stochastic")] Stochastic,
}

/// <summary>Which implementation of a loss runs (both compute the same loss to rounding).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LossImplementation>)), Description("loss implementation")]
public enum LossImplementation
{
    /// <summary>Materializes the [N, K] targets with plain libtorch ops; every loss has it.</summary>
    [JsonStringEnumMemberName("reference")] Reference,
    /// <summary>Row blocks with online log-sum-exps (NVRTC kernel on CUDA, libtorch ops on the CPU); ce and snce only.</summary>
    [JsonStringEnumMemberName("fused")] Fused,
}

/// <summary>The "auto" of <see cref="LossImplementation"/> (other names parse through <see cref="EnumNames{T}"/>).</summary>
public static class LossNames
{
    /// <summary>
    /// <c>snce train --loss-implementation</c>: "auto" is <see cref="LossImplementation.Fused"/> on CUDA for ce and snce (the
    /// faster training step, measured on an H200) and <see cref="LossImplementation.Reference"/> otherwise; any other
    /// name as <see cref="ParseImplementation"/>.
    /// </summary>
    public static LossImplementation ResolveImplementation(string name, LossKind kind, TorchSharp.DeviceType device) =>
        string.Equals(name.Trim(), "auto", StringComparison.OrdinalIgnoreCase)
            ? device == TorchSharp.DeviceType.CUDA && kind is LossKind.CrossEntropy or LossKind.Snce ? LossImplementation.Fused : LossImplementation.Reference
            : ParseImplementation(name);

    /// <summary>
    /// reference | fused (case-insensitive); throws naming the allowed ones. "auto", which earlier versions
    /// accepted and which always meant the reference implementation, still reads as <see cref="LossImplementation.Reference"/>.
    /// </summary>
    public static LossImplementation ParseImplementation(string name) =>
        string.Equals(name.Trim(), "auto", StringComparison.OrdinalIgnoreCase)
            ? LossImplementation.Reference
            : EnumNames<LossImplementation>.Parse(name);
}
