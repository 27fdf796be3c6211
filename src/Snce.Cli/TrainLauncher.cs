using Snce.Cli.Study;
using Snce.Distributed;
using Snce.Training;

namespace Snce.Cli;

/// <summary>
/// <c>snce train ... --gpus N</c>: checks what can be checked before any process starts (the global batch divides by N,
/// N GPUs are visible, no torchrun variables already set), then runs N copies of the same command without --gpus through
/// <see cref="LocalLauncher"/>, their logs in <c>RUN/logs/</c>.
/// </summary>
public static class TrainLauncher
{
    /// <summary>The run folder's subfolder for the ranks' logs.</summary>
    public const string LogFolder = "logs";

    /// <summary>Set to 1 for the ranks: the launcher holds the run folder's lock for them (rank 0 does not take it again).</summary>
    public const string LockHeldVariable = "SNCE_RUN_LOCK_HELD_BY_LAUNCHER";

    /// <summary>Launches <paramref name="gpus"/> ranks of <c>snce <paramref name="args"/></c> (the parsed tokens, --gpus among them); returns the exit code.</summary>
    public static int Launch(int gpus, IReadOnlyList<string> args, string runDir, int globalBatch, string deviceText)
    {
        if (gpus < 1) throw new ArgumentException($"--gpus must be at least 1 (got {gpus})");
        if (!string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("WORLD_SIZE")))
            throw new ArgumentException("--gpus starts its own processes, but WORLD_SIZE is already set (this looks like a process torchrun started); "
                + "leave out --gpus under torchrun, or unset WORLD_SIZE");
        if (deviceText.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase) || deviceText.Trim().StartsWith("cuda:", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--gpus {gpus} gives each process its own GPU; leave out --device {deviceText}");
        Trainer.LocalBatchOf(globalBatch, gpus);
        var visible = LocalLauncher.VisibleGpus(Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"));
        if (visible.Count < gpus)
            throw new ArgumentException($"--gpus {gpus} asks for {gpus} GPUs, but {(visible.Count == 0 ? "none is" : $"only {visible.Count} {(visible.Count == 1 ? "is" : "are")}")} visible"
                + (visible.Count == 0 ? " (no NVIDIA driver, or CUDA_VISIBLE_DEVICES is empty)" : $" ({string.Join(",", visible)})")
                + (visible.Count > 0 ? $"; use --gpus {visible.Count} or fewer" : "; train on the CPU without --gpus"));
        var (file, prefix) = SelfProcess.Command();
        // The launcher holds the folder for its ranks: a second launch into it fails here, before it truncates the ranks' logs.
        using var held = FolderLocks.Take(runDir, $"snce train --gpus {gpus}");
        var logs = Path.Combine(runDir, LogFolder);
        var options = new LaunchOptions(file, [.. prefix, .. WithoutGpus(args)], gpus, logs)
        {
            CudaDevices = visible,
            Environment = new Dictionary<string, string> { [LockHeldVariable] = "1" },
        };
        Console.Error.WriteLine($"snce: starting {gpus} ranks (GPUs {string.Join(",", visible.Take(gpus))}); their output goes to {logs}/rank-R.log, rank 0's is shown");
        using var stop = new StopSignals("asking every rank to stop at its next log step and save a checkpoint");
        options = options with { StopLine = () => stop.Received is { } s ? StopSignals.Name(s) : "SIGTERM" };
        var result = LocalLauncher.RunAsync(options, Console.Out.WriteLine, Console.Error.WriteLine, stop.Token).GetAwaiter().GetResult();
        if (result.FailedRank is not null) throw new SnceUserException(result.Message);
        return result.ExitCode;
    }

    /// <summary><paramref name="args"/> without <c>--gpus N</c> or <c>--gpus=N</c>: what each rank runs.</summary>
    public static List<string> WithoutGpus(IReadOnlyList<string> args)
    {
        var kept = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] == "--gpus") { i++; continue; }
            if (args[i].StartsWith("--gpus=", StringComparison.Ordinal)) continue;
            kept.Add(args[i]);
        }
        return kept;
    }
}
