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
        using (u) return ToDevice(u, device);
    }

    /// <summary>A copy of the CPU tensor <paramref name="cpu"/> on <paramref name="device"/> through pinned memory, without blocking (itself on the CPU).</summary>
    public static Tensor ToDevice(Tensor cpu, Device device)
    {
        if (device.type == DeviceType.CPU) return cpu.alias();
        using var pinned = cpu.pin_memory();
        return pinned.to(device, non_blocking: true);
    }

    /// <summary>
    /// Seeds the default generator of <paramref name="device"/> (the one in-kernel draws use: dropout, randint on the
    /// device). With a seed that depends only on (seed, step), a resumed run draws what an uninterrupted one does.
    /// </summary>
    public static void SeedDefault(long seed, Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.manual_seed_all(seed);
        else random.manual_seed(seed);
    }

    /// <summary>A seed that depends only on (seed, step) (SplitMix64-style odd multipliers), for <see cref="SeedDefault"/> once per step.</summary>
    public static long StepSeed(long seed, long step) => (long)(((ulong)seed * 0x9E3779B97F4A7C15UL) ^ ((ulong)step * 0xBF58476D1CE4E5B9UL)) & long.MaxValue;
}
