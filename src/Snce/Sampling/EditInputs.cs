using static TorchSharp.torch;

namespace Snce.Sampling;

/// <summary>The shape checks both samplers' inpainting entry points share.</summary>
internal static class EditInputs
{
    /// <summary>source ids [B, T] (integer), editable [B, T] (bool), condition [B, ...]; throws naming the bad shape.</summary>
    public static void Check(Tensor source, Tensor editable, Tensor condition)
    {
        if (source.dim() != 2 || source.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"source tokens must be integer ids [B, T], got {source.dtype} [{string.Join(", ", source.shape)}]");
        if (editable.dtype != ScalarType.Bool || !editable.shape.SequenceEqual(source.shape))
            throw new ArgumentException($"the editable mask must be bool [{string.Join(", ", source.shape)}] like the source tokens, got {editable.dtype} [{string.Join(", ", editable.shape)}]");
        if (condition.shape[0] != source.shape[0])
            throw new ArgumentException($"{condition.shape[0]} conditions for {source.shape[0]} source token rows");
    }
}
