using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Native.Cuda;

/// <summary>
/// The address of a tensor's first element (device memory for CUDA tensors), for passing to kernels.
/// Uses libtorch's own <c>Tensor::data_ptr()</c> (TorchSharp's exported <c>THSTensor_data</c>), which is
/// storage.data_ptr() + storage_offset() * element_size for every dtype, without the conversion copy that
/// <c>Tensor.storage&lt;T&gt;()</c> makes when T does not match the dtype (and it has no BFloat16 case).
/// The pointer is valid while the tensor (or another view of its storage) is alive.
/// </summary>
public static unsafe class TensorMemory
{
    static readonly object Gate = new();
    static delegate* unmanaged<nint, nint> tensorData;
    static delegate* unmanaged<nint, nint> storageData;

    /// <summary>Address of element [0, ..., 0] of <paramref name="t"/>.</summary>
    public static nint DataPointer(Tensor t)
    {
        Bind();
        var p = tensorData(t.Handle);
        if (p == 0 && t.numel() > 0) throw new InvalidOperationException($"libtorch returned no data pointer for a tensor of shape [{string.Join(", ", t.shape)}]");
        return p;
    }

    /// <summary>Address of the start of the tensor's storage (before its storage offset); for tests of the offset math.</summary>
    public static nint StoragePointer(Tensor t)
    {
        Bind();
        return storageData(t.Handle);
    }

    /// <summary>Bytes per element of a dtype the kernels take (<see cref="Snce.IO.ElementSize.Of"/>).</summary>
    public static int ElementSize(ScalarType dtype) => Snce.IO.ElementSize.Of(dtype);

    static void Bind()
    {
        if (tensorData != null) return;
        lock (Gate)
        {
            if (tensorData != null) return;
            TorchRuntime.EnsureLoaded();
            // The shim that TorchRuntime loaded (maybe a patched copy): load it again by that path to get the same handle.
            var path = TorchRuntime.Status?.LibTorchSharpPath;
            var handle = path is not null && Path.IsPathRooted(path) ? NativeLibrary.Load(path)
                : NativeLibrary.Load("LibTorchSharp", typeof(torch).Assembly, null);
            storageData = (delegate* unmanaged<nint, nint>)NativeLibrary.GetExport(handle, "THSStorage_data_ptr");
            tensorData = (delegate* unmanaged<nint, nint>)NativeLibrary.GetExport(handle, "THSTensor_data");
        }
    }
}
