using Snce.Native;
using TorchSharp;

namespace Snce.Bench;

/// <summary>Minimal --key value parsing for benchmarks (they are developer tools, not the product CLI).</summary>
public sealed class BenchArgs
{
    readonly Dictionary<string, string> values = [];
    readonly HashSet<string> read = [];

    public BenchArgs(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            var key = args[i][2..];
            values[key] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
        }
    }

    public string Get(string key, string fallback) { read.Add(key); return values.GetValueOrDefault(key, fallback); }
    public int Int(string key, int fallback) => int.Parse(Get(key, fallback.ToString()));
    public long[] Longs(string key, string fallback) => Get(key, fallback).Split(',').Select(long.Parse).ToArray();
    public string[] List(string key, string fallback) => Get(key, fallback).Split(',');
    public bool Flag(string key) => Get(key, "false") == "true";

    public torch.Device Device() => ComputeDevice.Resolve(DeviceRequest.Parse(Get("device", "auto")), values.GetValueOrDefault("libtorch"));

    /// <summary>Throws on options no benchmark code asked for (typos).</summary>
    public void RejectUnknown()
    {
        read.Add("libtorch");
        var unknown = values.Keys.Where(k => !read.Contains(k)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}
