using Snce.Native;

namespace Snce.Bench;

/// <summary>
/// <c>snce-bench NAME [options]</c>: runs one benchmark, prints its rows, saves JSON + markdown under --out.
/// Benchmarks are separate from tests: they measure ratios against a baseline in the same run.
/// </summary>
public static class Program
{
    static readonly Dictionary<string, (string Description, Func<string[], int> Run)> Benchmarks = new()
    {
        ["matmul"] = ("fp32 vs bf16 matmul throughput on the chosen device (sanity baseline)", MatmulBench.Run),
        ["loss"] = ("CE and SNCE, reference vs fused: forward+backward time and peak memory (checks fused == reference first)", LossBench.Run),
        ["training"] = ("generator training step time (Snce trainer vs plain TorchSharp), MFU, sampling images/s", TrainingBench.Run),
        ["features"] = ("FD-ResNet18 feature extraction images/s: ONNX Runtime (CPU) vs TorchSharp on the device (checks they agree first)", FeaturesBench.Run),
        ["decode"] = ("PNG decode images/s on the data sets: StbImageSharp (managed) vs SkiaSharp (native libpng); checks they agree first", DecodeBench.Run),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" || !Benchmarks.ContainsKey(args[0]))
        {
            if (args.Length > 0 && args[0] is not ("-h" or "--help")) Console.Error.WriteLine($"snce-bench: unknown benchmark '{args[0]}'");
            Console.WriteLine("usage: snce-bench NAME [--device auto|cpu|cuda] [--libtorch DIR] [--out DIR] [benchmark options]");
            foreach (var (name, (desc, _)) in Benchmarks) Console.WriteLine($"  {name,-12} {desc}");
            return args.Length == 0 || args[0] is "-h" or "--help" ? 0 : 2;
        }
        try
        {
            return Benchmarks[args[0]].Run(args[1..]);
        }
        catch (Exception e) when (e is SnceSetupException or ArgumentException)
        {
            Console.Error.WriteLine($"snce-bench: error: {e.Message}");
            return 1;
        }
    }
}
