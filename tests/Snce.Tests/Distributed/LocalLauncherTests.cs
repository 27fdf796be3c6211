using System.Diagnostics;
using Snce.Distributed;
using Snce.Tests.Support;

namespace Snce.Tests.Distributed;

/// <summary>The launcher with /bin/sh children: each rank's variables and log, failure propagation, stop requests.</summary>
public class LocalLauncherTests
{
    static LaunchOptions Sh(string script, int ranks, string logDir, params string[] extra) =>
        new("/bin/sh", ["-c", script, .. extra], ranks, logDir);

    [Fact]
    public async Task EveryRankGetsItsVariablesAndItsOwnLog()
    {
        using var dir = new TempDir();
        var forwarded = new List<string>();
        var script = "echo \"RANK=$RANK WORLD_SIZE=$WORLD_SIZE LOCAL_RANK=$LOCAL_RANK LOCAL_WORLD_SIZE=$LOCAL_WORLD_SIZE MASTER_ADDR=$MASTER_ADDR " +
                     "MASTER_PORT=$MASTER_PORT CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE SNCE_STOP_FROM_PARENT=$SNCE_STOP_FROM_PARENT\"";
        var result = await LocalLauncher.RunAsync(Sh(script, 3, dir["logs"]) with { CudaDevices = ["5", "6", "7"] }, l => { lock (forwarded) forwarded.Add(l); });
        Assert.Equal(0, result.ExitCode);
        Assert.Null(result.FailedRank);
        var nvls = Environment.GetEnvironmentVariable("NCCL_NVLS_ENABLE") is { Length: > 0 } v ? v : "0";
        int? port = null;
        for (var r = 0; r < 3; r++)
        {
            var line = File.ReadAllLines(LocalLauncher.LogOf(dir["logs"], r)).Single();
            var vars = line.Split(' ').Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => (string?)kv[1]);
            var env = DistributedEnvironment.Parse(vars);                           // what the child itself would read
            Assert.Equal(new DistributedEnvironment(r, 3, r, 3, "127.0.0.1", env.MasterPort) { Launched = true }, env);
            port ??= env.MasterPort;
            Assert.Equal(port, env.MasterPort);                                      // one rendezvous port for all
            Assert.Equal($"{5 + r}", vars["CUDA_VISIBLE_DEVICES"]);
            Assert.Equal(nvls, vars["NCCL_NVLS_ENABLE"]);
            Assert.Equal("1", vars["SNCE_STOP_FROM_PARENT"]);
        }
        Assert.StartsWith("RANK=0 ", Assert.Single(forwarded));                     // rank 0's output only
    }

    [Fact]
    public async Task AFailedRankStopsTheOthersAndIsNamed()
    {
        using var dir = new TempDir();
        // Rank 0 records its pid and sleeps a minute; rank 1 waits for that pid, says why and exits 3.
        var script = "if [ \"$RANK\" = 1 ]; then while [ ! -s \"$0\" ]; do sleep 0.05; done; echo 'rank one: out of memory'; exit 3; fi; echo $$ > \"$0.tmp\"; mv \"$0.tmp\" \"$0\"; exec sleep 60";
        var clock = Stopwatch.StartNew();
        var result = await LocalLauncher.RunAsync(Sh(script, 2, dir["logs"], dir["sleeper.pid"]));
        clock.Stop();
        Assert.Equal(3, result.ExitCode);
        Assert.Equal(1, result.FailedRank);
        Assert.Contains("rank 1 of 2 exited with code 3", result.Message);
        Assert.Contains("rank one: out of memory", result.Message);                 // the end of its log
        Assert.Contains("rank-1.log", result.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), $"the launcher waited {clock.Elapsed} for the sleeping rank instead of killing it");
        var pid = int.Parse(File.ReadAllText(dir["sleeper.pid"]).Trim());
        Assert.True(Dead(pid), $"rank 0 (pid {pid}, sleep 60) is still alive");
    }

    [Fact]
    public async Task AStopRequestReachesEveryRankThroughItsInput()
    {
        using var dir = new TempDir();
        using var stop = new CancellationTokenSource();
        stop.Cancel();                                                               // asked to stop as soon as they run
        var result = await LocalLauncher.RunAsync(Sh("read line; echo \"rank $RANK got $line\"; exit 0", 2, dir["logs"]) with { StopLine = () => "SIGINT" },
            stop: stop.Token);
        Assert.True(result.Stopped);
        Assert.Null(result.FailedRank);
        for (var r = 0; r < 2; r++)
            Assert.Equal($"rank {r} got SIGINT", File.ReadAllText(LocalLauncher.LogOf(dir["logs"], r)).Trim());
    }

    [Fact]
    public async Task ACodeAfterAStopIsNotAFailure()
    {
        using var dir = new TempDir();
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        // Stopped ranks exit 143 (SIGTERM's convention) like snce train does: rank 0's code is the launch's, and no rank is blamed.
        var result = await LocalLauncher.RunAsync(Sh("read line; exit 143", 2, dir["logs"]), stop: stop.Token);
        Assert.Equal(143, result.ExitCode);
        Assert.Null(result.FailedRank);
    }

    [Fact]
    public async Task ARankOutlivingAFinishedOneByTheGraceIsKilledAsHung()
    {
        using var dir = new TempDir();
        // Rank 0 finishes at once; rank 1 would sleep a minute (a collective rank 0 never joins).
        var result = await LocalLauncher.RunAsync(Sh("[ \"$RANK\" = 1 ] && exec sleep 60; exit 0", 2, dir["logs"]) with { FinishGrace = TimeSpan.FromSeconds(1) });
        Assert.Equal(1, result.FailedRank);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("rank 1 was still running 1 s after another rank finished", result.Message);
    }

    [Fact]
    public void VisibleGpusFollowCudaVisibleDevicesElseTheDriver()
    {
        Assert.Equal(["3", "5"], LocalLauncher.VisibleGpus(" 3, 5", () => 8));
        Assert.Equal(["GPU-1a2b"], LocalLauncher.VisibleGpus("GPU-1a2b", () => 8));
        Assert.Empty(LocalLauncher.VisibleGpus("", () => 8));
        Assert.Equal(["0", "1"], LocalLauncher.VisibleGpus(null, () => 2));
        Assert.Empty(LocalLauncher.VisibleGpus(null, () => 0));
        Assert.Empty(LocalLauncher.VisibleGpus(null));                                // this machine: no NVIDIA driver
    }

    static bool Dead(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return p.HasExited;
        }
        catch (ArgumentException) { return true; }                                  // no such process
    }
}
