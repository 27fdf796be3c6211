using System.Collections;
using System.Globalization;

namespace Snce.Distributed;

/// <summary>
/// Where this process sits in a multi-process run, read from the variables torchrun sets: RANK, WORLD_SIZE,
/// LOCAL_RANK, LOCAL_WORLD_SIZE (optional), MASTER_ADDR, MASTER_PORT. Without WORLD_SIZE the run is one process.
/// Reference: https://pytorch.org/docs/stable/elastic/run.html#environment-variables.
/// </summary>
/// <param name="Rank">Global rank, 0..WorldSize−1.</param>
/// <param name="WorldSize">Number of processes over all hosts.</param>
/// <param name="LocalRank">Rank on this host (picks the GPU).</param>
/// <param name="LocalWorldSize">Processes on this host.</param>
/// <param name="MasterAddress">Host of rank 0, where the rendezvous listens.</param>
/// <param name="MasterPort">TCP port of the rendezvous on <paramref name="MasterAddress"/>.</param>
public sealed record DistributedEnvironment(int Rank, int WorldSize, int LocalRank, int LocalWorldSize, string MasterAddress, int MasterPort)
{
    /// <summary>The one-process run (no variables set).</summary>
    public static readonly DistributedEnvironment SingleProcess = new(0, 1, 0, 1, "127.0.0.1", 0);

    /// <summary>True when WORLD_SIZE was given (even 1: the NCCL path with one rank).</summary>
    public bool Launched { get; init; }

    /// <summary>Reads this process's environment.</summary>
    public static DistributedEnvironment FromProcess()
    {
        var vars = new Dictionary<string, string?>();
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables()) vars[(string)e.Key] = e.Value as string;
        return Parse(vars);
    }

    /// <summary>Parses torchrun's variables; throws <see cref="DistributedSetupException"/> naming the bad one and the fix.</summary>
    public static DistributedEnvironment Parse(IReadOnlyDictionary<string, string?> vars)
    {
        if (!vars.TryGetValue("WORLD_SIZE", out var ws) || string.IsNullOrWhiteSpace(ws)) return SingleProcess;
        var world = Integer(vars, "WORLD_SIZE", 1, int.MaxValue, "the number of processes (≥ 1)");
        var rank = Integer(vars, "RANK", 0, int.MaxValue, "this process's global rank, 0..WORLD_SIZE−1");
        if (rank >= world)
            throw new DistributedSetupException($"RANK={rank} is not below WORLD_SIZE={world}; give each process a distinct RANK in 0..{world - 1}");
        var localRank = Integer(vars, "LOCAL_RANK", 0, int.MaxValue, "this process's rank on its host (its GPU), 0..LOCAL_WORLD_SIZE−1");
        var localWorld = vars.TryGetValue("LOCAL_WORLD_SIZE", out var lw) && !string.IsNullOrWhiteSpace(lw)
            ? Integer(vars, "LOCAL_WORLD_SIZE", 1, world, $"the number of processes on this host, 1..WORLD_SIZE={world}")
            : world;
        if (localRank >= localWorld)
            throw new DistributedSetupException($"LOCAL_RANK={localRank} is not below LOCAL_WORLD_SIZE={localWorld}; give each process on a host a distinct LOCAL_RANK in 0..{localWorld - 1}");
        if (!vars.TryGetValue("MASTER_ADDR", out var addr) || string.IsNullOrWhiteSpace(addr))
            throw new DistributedSetupException("MASTER_ADDR is not set; set it to the host name or IP address of rank 0 (127.0.0.1 on one host)");
        var port = Integer(vars, "MASTER_PORT", 1, 65535, "a free TCP port on MASTER_ADDR, 1..65535 (e.g. 29500)");
        return new DistributedEnvironment(rank, world, localRank, localWorld, addr.Trim(), port) { Launched = true };
    }

    static int Integer(IReadOnlyDictionary<string, string?> vars, string name, int min, int max, string meaning)
    {
        if (!vars.TryGetValue(name, out var text) || string.IsNullOrWhiteSpace(text))
            throw new DistributedSetupException($"{name} is not set but WORLD_SIZE is; set {name} to {meaning}, or unset WORLD_SIZE for one process");
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            throw new DistributedSetupException($"{name}='{text}' is not a non-negative integer; set it to {meaning}");
        if (v < min || v > max)
            throw new DistributedSetupException($"{name}={v} is out of range; set it to {meaning}");
        return v;
    }
}
