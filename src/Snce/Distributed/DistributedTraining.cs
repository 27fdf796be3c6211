using System.Collections;
using System.Globalization;
using TorchSharp;

namespace Snce.Distributed;

/// <summary>
/// The decisions a training process makes about data parallelism before it loads anything: whether it is one rank of a
/// launched run (torchrun's variables, or <see cref="ModeVariable"/> = nccl for the NCCL path at world size 1), which GPU
/// it takes, and that the device can run NCCL at all.
/// </summary>
public static class DistributedTraining
{
    /// <summary>Set to <c>nccl</c> to train through NCCL as a world of one without torchrun's variables (the bit-for-bit check).</summary>
    public const string ModeVariable = "SNCE_DISTRIBUTED";

    /// <summary>Seconds every rank waits for the others at the rendezvous (default <see cref="DefaultRendezvousSeconds"/>).</summary>
    public const string RendezvousTimeoutVariable = "SNCE_RENDEZVOUS_TIMEOUT_S";

    /// <summary>Rendezvous timeout when <see cref="RendezvousTimeoutVariable"/> is unset: ranks load their data before they meet.</summary>
    public const int DefaultRendezvousSeconds = 300;

    /// <summary>This process's variables, for <see cref="Resolve"/>.</summary>
    public static IReadOnlyDictionary<string, string?> ProcessVariables()
    {
        var vars = new Dictionary<string, string?>();
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables()) vars[(string)e.Key] = e.Value as string;
        return vars;
    }

    /// <summary>
    /// Where this process sits: torchrun's variables (<see cref="DistributedEnvironment.Parse"/>); without them, one
    /// process, launched through NCCL when <see cref="ModeVariable"/> is <c>nccl</c>. Throws naming a bad value.
    /// </summary>
    public static DistributedEnvironment Resolve(IReadOnlyDictionary<string, string?> vars)
    {
        var mode = vars.TryGetValue(ModeVariable, out var m) ? m?.Trim().ToLowerInvariant() : null;
        if (mode is not (null or "" or "nccl"))
            throw new DistributedSetupException($"{ModeVariable}='{m}' is not understood; set it to 'nccl' (train through NCCL even as one process) or unset it");
        var env = DistributedEnvironment.Parse(vars);
        return !env.Launched && mode == "nccl" ? DistributedEnvironment.SingleProcess with { Launched = true } : env;
    }

    /// <summary>Throws unless a launched run is on CUDA: NCCL reduces GPU memory only.</summary>
    public static void CheckDevice(DistributedEnvironment env, DeviceType device)
    {
        if (!env.Launched || device == DeviceType.CUDA) return;
        throw new DistributedSetupException(env.WorldSize > 1
            ? $"WORLD_SIZE={env.WorldSize} asks for data-parallel training through NCCL, which runs on CUDA GPUs only, but this process trains on the {device}; "
              + "train on GPUs (--device cuda, or --gpus N), or unset WORLD_SIZE to train as one process on the CPU"
            : $"the NCCL path (WORLD_SIZE=1 or {ModeVariable}=nccl) runs on CUDA GPUs only, but this process trains on the {device}; unset WORLD_SIZE and {ModeVariable} to train on the CPU");
    }

    /// <summary>
    /// The CUDA device index rank <see cref="DistributedEnvironment.LocalRank"/> takes among <paramref name="deviceCount"/>
    /// visible ones: the only one when the launcher left one (CUDA_VISIBLE_DEVICES per rank), else the LOCAL_RANK-th (torchrun).
    /// </summary>
    public static int CudaDeviceFor(DistributedEnvironment env, int deviceCount)
    {
        if (deviceCount <= 0) throw new DistributedSetupException($"rank {env.Rank} sees no CUDA device; check CUDA_VISIBLE_DEVICES and the driver (nvidia-smi)");
        if (deviceCount == 1) return 0;
        if (env.LocalRank < deviceCount) return env.LocalRank;
        throw new DistributedSetupException($"LOCAL_RANK={env.LocalRank} but only {deviceCount} CUDA devices are visible; start at most {deviceCount} processes on this host, "
            + "or give each process one GPU with CUDA_VISIBLE_DEVICES");
    }

    /// <summary>The rendezvous timeout: <see cref="RendezvousTimeoutVariable"/> seconds, or <see cref="DefaultRendezvousSeconds"/>.</summary>
    public static TimeSpan RendezvousTimeout(IReadOnlyDictionary<string, string?> vars)
    {
        if (!vars.TryGetValue(RendezvousTimeoutVariable, out var text) || string.IsNullOrWhiteSpace(text)) return TimeSpan.FromSeconds(DefaultRendezvousSeconds);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s)
            : throw new DistributedSetupException($"{RendezvousTimeoutVariable}='{text}' is not a positive number of seconds");
    }
}
