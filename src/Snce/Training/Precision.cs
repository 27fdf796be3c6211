using System.ComponentModel;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// Numeric precision of training. TorchSharp has no autocast, so bf16 means bf16 weights and activations
/// with fp32 master weights and optimizer state (the flat optimizer keeps both); tf32 keeps fp32 weights and
/// lets CUDA matmuls use TF32 tensor cores.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<Precision>)), Description("precision")]
public enum Precision
{
    /// <summary>fp32 everywhere, TF32 off.</summary>
    [JsonStringEnumMemberName("fp32")] Fp32,
    /// <summary>fp32 weights, TF32 matmuls on CUDA (same as fp32 on the CPU).</summary>
    [JsonStringEnumMemberName("tf32")] Tf32,
    /// <summary>bf16 weights/activations, fp32 master weights, Adam moments and loss math.</summary>
    [JsonStringEnumMemberName("bf16")] Bf16,
}

/// <summary>Applying a <see cref="Precision"/> (its names: <see cref="EnumNames{T}"/>).</summary>
public static class Precisions
{
    /// <summary>dtype of the model's weights and activations.</summary>
    public static ScalarType WeightDtype(this Precision p) => p == Precision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>Sets the process-wide CUDA TF32 switches for this precision (no-op on the CPU).</summary>
    public static void Apply(this Precision p, Device device)
    {
        if (device.type != DeviceType.CUDA) return;
        var tf32 = p != Precision.Fp32;
        backends.cuda.matmul.allow_tf32 = tf32;
        backends.cudnn.allow_tf32 = tf32;
    }
}
