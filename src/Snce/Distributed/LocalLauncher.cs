using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Snce.Distributed;

/// <summary>What <see cref="LocalLauncher"/> starts: the same command once per rank, on one host.</summary>
/// <param name="FileName">The program (for <c>snce train --gpus N</c>: this same binary).</param>
/// <param name="Arguments">Its arguments, the same for every rank.</param>
/// <param name="Processes">How many ranks (WORLD_SIZE = LOCAL_WORLD_SIZE).</param>
/// <param name="LogDir">Where rank R's output goes: <c>rank-R.log</c> (stdout and stderr, line by line).</param>
public sealed record LaunchOptions(string FileName, IReadOnlyList<string> Arguments, int Processes, string LogDir)
{
    /// <summary>MASTER_ADDR of every rank.</summary>
    public string MasterAddress { get; init; } = "127.0.0.1";

    /// <summary>MASTER_PORT; null picks a free one (<see cref="LocalLauncher.FreePort"/>).</summary>
    public int? MasterPort { get; init; }

    /// <summary>CUDA_VISIBLE_DEVICES of rank r is entry r; null: rank r sees GPU r.</summary>
    public IReadOnlyList<string>? CudaDevices { get; init; }

    /// <summary>Variables every rank gets besides the rank's own (they override this process's).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>How long the other ranks may run on after one rank ended with 0 before they are killed as hung.</summary>
    public TimeSpan FinishGrace { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>The line written to every rank's standard input when the launch is asked to stop (see <c>StopSignals</c>).</summary>
    public Func<string> StopLine { get; init; } = () => "SIGTERM";
}

/// <summary>How a launch ended.</summary>
/// <param name="ExitCode">0 when every rank ended with 0; the failed rank's code; or rank 0's after a requested stop.</param>
/// <param name="FailedRank">The first rank that failed (a non-zero exit before any stop request, or hung), or null.</param>
/// <param name="Message">What happened, naming the failed rank and ending with the last lines of its log.</param>
/// <param name="Stopped">True when the launch was asked to stop (a signal) and the ranks were asked to stop too.</param>
public sealed record LaunchResult(int ExitCode, int? FailedRank, string Message, bool Stopped);

/// <summary>
/// torchrun's job on one host, for <c>snce train --gpus N</c>: starts N copies of a command with RANK, WORLD_SIZE,
/// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and one GPU each (CUDA_VISIBLE_DEVICES), NVLink multicast off
/// (NCCL_NVLS_ENABLE=0, unless set), writes each rank's output to <c>rank-R.log</c> and forwards rank 0's. When one rank
/// ends with a non-zero code, the others are killed at once (they would wait in their next collective for a peer that is
/// gone), and the result names that rank with the end of its log. A stop request (the caller's signal) is passed to every
/// rank through its standard input (<c>SNCE_STOP_FROM_PARENT=1</c>), so a terminal's Ctrl-C, which reaches the children
/// too, still counts as their first signal and they stop at the same step and save. The command is any program: tests
/// drive it with /bin/sh.
/// </summary>
public static class LocalLauncher
{
    /// <summary>Lines of a failed rank's log that the result quotes.</summary>
    public const int TailLines = 20;

    /// <summary>The file rank <paramref name="rank"/>'s output goes to, under <paramref name="logDir"/>.</summary>
    public static string LogOf(string logDir, int rank) => Path.Combine(logDir, $"rank-{rank}.log");

    /// <summary>The variables rank <paramref name="rank"/> of <paramref name="world"/> is started with.</summary>
    public static IReadOnlyDictionary<string, string> RankEnvironment(int rank, int world, string masterAddress, int masterPort, string cudaDevice)
    {
        string S(int v) => v.ToString(CultureInfo.InvariantCulture);
        return new Dictionary<string, string>
        {
            ["RANK"] = S(rank), ["WORLD_SIZE"] = S(world), ["LOCAL_RANK"] = S(rank), ["LOCAL_WORLD_SIZE"] = S(world),
            ["MASTER_ADDR"] = masterAddress, ["MASTER_PORT"] = S(masterPort), ["CUDA_VISIBLE_DEVICES"] = cudaDevice,
        };
    }

    /// <summary>
    /// The GPUs a child may be given: the entries of CUDA_VISIBLE_DEVICES when it is set (<paramref name="cudaVisibleDevices"/>,
    /// passed on as written: indices or UUIDs), else 0..n−1 for the <paramref name="deviceCount"/> devices the driver reports
    /// (default: <see cref="Native.Cuda.CudaDriver.Devices"/>, none without a driver).
    /// </summary>
    public static IReadOnlyList<string> VisibleGpus(string? cudaVisibleDevices, Func<int>? deviceCount = null)
    {
        if (cudaVisibleDevices is not null)
            return [.. cudaVisibleDevices.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        var count = (deviceCount ?? (() => Native.Cuda.CudaDriver.Devices().Count))();
        return [.. Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture))];
    }

    /// <summary>A TCP port that was free on the loopback a moment ago (the OS's pick).</summary>
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        try { return ((IPEndPoint)l.LocalEndpoint).Port; }
        finally { l.Stop(); }
    }

    sealed class Rank(int index, Process process, StreamWriter log)
    {
        public readonly int Index = index;
        public readonly Process Process = process;
        public readonly StreamWriter Log = log;
        public readonly Queue<string> Tail = new();
        public readonly object Gate = new();

        public void Line(string line)
        {
            lock (Gate)
            {
                Log.WriteLine(line);
                Tail.Enqueue(line);
                if (Tail.Count > TailLines) Tail.Dequeue();
            }
        }
    }

    /// <summary>
    /// Starts the ranks and waits for all of them. <paramref name="stdout"/> and <paramref name="stderr"/> receive rank 0's
    /// lines; <paramref name="stop"/> asks every rank to stop (through its standard input) and waits for them.
    /// </summary>
    public static async Task<LaunchResult> RunAsync(LaunchOptions options, Action<string>? stdout = null, Action<string>? stderr = null, CancellationToken stop = default)
    {
        if (options.Processes < 1) throw new ArgumentException($"a launch needs at least one process (got {options.Processes})");
        var devices = options.CudaDevices ?? [.. Enumerable.Range(0, options.Processes).Select(i => i.ToString(CultureInfo.InvariantCulture))];
        if (devices.Count < options.Processes)
            throw new ArgumentException($"{options.Processes} processes need {options.Processes} GPUs, but {devices.Count} are listed ({string.Join(",", devices)})");
        Directory.CreateDirectory(options.LogDir);
        var port = options.MasterPort ?? FreePort();
        var ranks = new List<Rank>();
        try
        {
            for (var r = 0; r < options.Processes; r++)
            {
                var psi = new ProcessStartInfo(options.FileName) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
                foreach (var a in options.Arguments) psi.ArgumentList.Add(a);
                if (string.IsNullOrEmpty(System.Environment.GetEnvironmentVariable("NCCL_NVLS_ENABLE"))) psi.Environment["NCCL_NVLS_ENABLE"] = "0";
                psi.Environment["SNCE_STOP_FROM_PARENT"] = "1";
                foreach (var (k, v) in options.Environment) psi.Environment[k] = v;
                foreach (var (k, v) in RankEnvironment(r, options.Processes, options.MasterAddress, port, devices[r])) psi.Environment[k] = v;
                var log = new StreamWriter(LogOf(options.LogDir, r), append: false) { AutoFlush = true };
                Process p;
                try { p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {options.FileName}"); }
                catch { log.Dispose(); throw; }
                var rank = new Rank(r, p, log);
                ranks.Add(rank);
                var first = r == 0;
                p.OutputDataReceived += (_, e) => { if (e.Data is null) return; rank.Line(e.Data); if (first) stdout?.Invoke(e.Data); };
                p.ErrorDataReceived += (_, e) => { if (e.Data is null) return; rank.Line(e.Data); if (first) stderr?.Invoke(e.Data); };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
            }
            return await WaitAsync(options, ranks, stop);
        }
        finally
        {
            foreach (var r in ranks)
            {
                Kill(r);
                r.Process.WaitForExit();                                    // the output events are drained
                lock (r.Gate) r.Log.Dispose();
                r.Process.Dispose();
            }
        }
    }

    static async Task<LaunchResult> WaitAsync(LaunchOptions options, List<Rank> ranks, CancellationToken stop)
    {
        var running = ranks.Select(r => (Exit: r.Process.WaitForExitAsync(), Rank: r)).ToList();
        var stopped = false;
        var stopTask = Task.Delay(Timeout.Infinite, stop);
        DateTime? firstDone = null;
        while (running.Count > 0)
        {
            var waits = running.Select(x => x.Exit).ToList();
            if (!stopped) waits.Add(stopTask);
            var grace = firstDone is { } d ? Task.Delay(Max(TimeSpan.Zero, d + options.FinishGrace - DateTime.UtcNow)) : null;
            if (grace is not null) waits.Add(grace);
            await Task.WhenAny(waits);
            if (!stopped && stopTask.IsCompleted)
            {
                stopped = true;
                var line = options.StopLine();
                foreach (var (_, r) in running)
                    try { await r.Process.StandardInput.WriteLineAsync(line); r.Process.StandardInput.Close(); }
                    catch (Exception e) when (e is IOException or InvalidOperationException) { }   // it ended meanwhile
            }
            var ended = running.Where(x => x.Exit.IsCompleted).Select(x => x.Rank).OrderBy(r => r.Index).ToList();
            running.RemoveAll(x => x.Exit.IsCompleted);
            foreach (var r in ended)
            {
                r.Process.WaitForExit();                                       // its output is drained into its log
                var code = r.Process.ExitCode;
                if (code == 0 || stopped) continue;
                foreach (var (_, other) in running) Kill(other);               // they would wait for it in their next collective
                return new LaunchResult(code, r.Index, $"rank {r.Index} of {ranks.Count} exited with code {code}, so the other ranks were stopped"
                    + TailOf(options, r), false);
            }
            if (ended.Count > 0) firstDone ??= DateTime.UtcNow;
            else if (grace is { IsCompleted: true } && running.Count > 0)
            {
                // The others outlived a finished rank by the grace: hung (in a collective the finished rank never joined).
                var hung = running[0].Rank;
                foreach (var (_, r) in running) Kill(r);
                return new LaunchResult(1, hung.Index, $"rank {hung.Index} was still running {options.FinishGrace.TotalSeconds:0} s after another rank finished, so every rank left was killed"
                    + TailOf(options, hung), stopped);
            }
        }
        var rank0 = ranks[0].Process.ExitCode;
        var failed = ranks.FirstOrDefault(r => r.Process.ExitCode != 0);
        return new LaunchResult(rank0 != 0 ? rank0 : failed?.Process.ExitCode ?? 0, null,
            stopped ? $"stopped on request; rank 0 exited with code {rank0}" : $"all {ranks.Count} ranks finished", stopped);
    }

    static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    static string TailOf(LaunchOptions options, Rank r)
    {
        string[] lines;
        lock (r.Gate) lines = [.. r.Tail];
        return $". Last {lines.Length} lines of {LogOf(options.LogDir, r.Index)}:\n" + string.Join("\n", lines.Select(l => "  " + l));
    }

    static void Kill(Rank r)
    {
        try { if (!r.Process.HasExited) r.Process.Kill(entireProcessTree: true); }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
    }
}
