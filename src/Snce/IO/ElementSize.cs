using static TorchSharp.torch;

namespace Snce.IO;

/// <summary>
/// Bytes per element of the dtypes Snce stores and hands to kernels: one table for the .npy and safetensors readers
/// (which size a header's promise before allocating) and the CUDA kernels' memory budgets.
/// </summary>
public static class ElementSize
{
    /// <summary>Bytes per element of <paramref name="dtype"/>; throws naming a dtype outside the table.</summary>
    public static int Of(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        _ => throw new ArgumentException($"no element size for dtype {dtype}"),
    };
}
