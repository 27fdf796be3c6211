using TorchSharp;
using static TorchSharp.torch;

namespace Snce;

/// <summary>
/// Random numbers a run owns, for any device. TorchSharp 0.107 creates CPU generators only (docs/torchsharp-notes.md), so
/// draws split by who must know them. Numbers the host must know (the masked objective's per-sequence mask ratios, from
/// which it counts the masked rows without a device read-back) come from an explicit CPU generator, and travel to the
/// device through pinned memory without blocking (<see cref="Uniform(Generator, long[], Device)"/>, <see cref="ToDevice"/>).
/// Everything only the device reads (masked positions, CFG dropout, caption picks, the stochastic loss's picks, backbone
/// dropout) is drawn on the device from its default generator (<see cref="DefaultUniform"/>), which the run seeds from
/// (seed, step) for each step (<see cref="SeededDefault"/>): nothing is copied from the host, and a resumed run draws
/// what an uninterrupted one does.
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

    /// <summary>
    /// U[0, 1) fp32 of <paramref name="shape"/> drawn on <paramref name="device"/> itself from its default generator: no
    /// host copy. Reproducible only inside a <see cref="SeededDefault"/> scope (the trainer opens one per step).
    /// </summary>
    public static Tensor DefaultUniform(long[] shape, Device device) => rand(shape, device: device);

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
    /// Prefer <see cref="SeededDefault"/>, which also gives the caller's CPU stream back.
    /// </summary>
    public static void SeedDefault(long seed, Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.manual_seed_all(seed);
        else
        {
            using var cpu = Generator.Default;                                       // the same generator torch.manual_seed seeds, without touching CUDA's
            cpu.manual_seed(seed);
        }
    }

    /// <summary>
    /// Seeds the default generator of <paramref name="device"/> with <paramref name="seed"/> until the returned scope is
    /// disposed, so that every draw made meanwhile without an explicit generator (module initialization, dropout,
    /// <c>randint</c>/<c>randn</c> on the device) belongs to the caller's run, and the device's draws are made on the
    /// device: nothing random is copied from the host. TorchSharp 0.107 cannot create a generator on CUDA
    /// (docs/torchsharp-notes.md), so a run owns a stream by seeding the device's default one for each of its units of
    /// work (a step: <see cref="StepSeed"/>); two runs interleaved unit by unit in one process then draw what each draws
    /// alone. A CPU scope restores the CPU default generator's previous state when disposed (a CUDA scope never touches it), so the caller's own CPU draws are untouched;
    /// TorchSharp cannot read CUDA's default state, which stays seeded. Single-threaded use only.
    /// </summary>
    public static IDisposable SeededDefault(long seed, Device device) => new SeededScope(seed, device);

    /// <summary>Runs <paramref name="body"/> inside <see cref="SeededDefault"/>: e.g. a model's initialization from a run's seed.</summary>
    public static T WithSeededDefault<T>(long seed, Device device, Func<T> body)
    {
        using (SeededDefault(seed, device)) return body();
    }

    sealed class SeededScope : IDisposable
    {
        // The CPU default's state (~5 KB on the host), saved only when the CPU default is the one seeded: a CUDA scope seeds
        // CUDA's generator alone, so a GPU step does not pay for a state it never touches.
        readonly Generator? cpu;
        readonly Tensor? saved;

        public SeededScope(long seed, Device device)
        {
            if (device.type != DeviceType.CUDA)
            {
                cpu = Generator.Default;
                saved = cpu.get_state().DetachFromDisposeScope();
            }
            SeedDefault(seed, device);
        }

        public void Dispose()
        {
            if (cpu is null) return;
            cpu.set_state(saved!);
            saved!.Dispose();
            cpu.Dispose();
        }
    }

    /// <summary>A seed that depends only on (seed, step) (SplitMix64-style odd multipliers), for <see cref="SeedDefault"/> once per step.</summary>
    public static long StepSeed(long seed, long step) => (long)(((ulong)seed * 0x9E3779B97F4A7C15UL) ^ ((ulong)step * 0xBF58476D1CE4E5B9UL)) & long.MaxValue;
}
