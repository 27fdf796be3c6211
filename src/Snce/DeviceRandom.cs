using TorchSharp;
using static TorchSharp.torch;

namespace Snce;

/// <summary>
/// Random numbers from an explicit generator, for any device. TorchSharp 0.107 creates CPU generators only
/// (docs/torchsharp-notes.md), so draws happen on the CPU and are copied to the device through pinned memory
/// without blocking: reproducible from the generator's state, and no host–device synchronization per step.
/// </summary>
public static class DeviceRandom
{
    /// <summary>U[0, 1) fp32 of <paramref name="shape"/> on <paramref name="device"/>, drawn from the CPU generator <paramref name="generator"/>.</summary>
    public static Tensor Uniform(Generator generator, long[] shape, Device device)
    {
        var u = rand(shape, generator: generator);
        if (device.type == DeviceType.CPU) return u;
        using (u)
        {
            using var pinned = u.pin_memory();
            return pinned.to(device, non_blocking: true);
        }
    }
}
