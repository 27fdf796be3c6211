using System.CommandLine;
using System.Text.Json;
using Snce.Diagnostics;

namespace Snce.Cli.Commands;

/// <summary><c>snce info</c>: versions, native libraries, threads and GPUs; <c>--check</c> also computes.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var device = new DeviceOptions();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var check = new Option<bool>("--check") { Description = "Also run a small computation on the device (autograd, fp32 and bf16 matmul) and report it; exit 1 if it is wrong." };
        var size = new Option<int>("--check-size") { Description = "Matrix size for --check.", DefaultValueFactory = _ => 512 };
        var cmd = new Command("info", "Show the Snce, TorchSharp and libtorch versions, the native-library fix, CPU threads and CUDA devices.");
        device.AddTo(cmd);
        cmd.Options.Add(json);
        cmd.Options.Add(check);
        cmd.Options.Add(size);
        cmd.SetAction(parse =>
        {
            var dev = device.Resolve(parse);
            var report = SystemReport.Collect(dev);
            var result = parse.GetValue(check) ? SelfCheck.Run(dev, parse.GetValue(size)) : null;
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { report, check = result }, Json.Options));
            else
                Print(report, result);
            return result is { Passed: false } ? SnceCli.RuntimeError : 0;
        });
        return cmd;
    }

    static void Print(SystemReport r, SelfCheckResult? c)
    {
        Console.WriteLine($"snce             {r.SnceVersion}");
        Console.WriteLine($"TorchSharp       {r.TorchSharpVersion}");
        Console.WriteLine($"libtorch         {r.LibTorchVersion} ({r.LibTorchSource}) in {r.LibTorchDir}");
        Console.WriteLine($"native shim      {r.LibTorchSharpPath}");
        Console.WriteLine($"GLIBCXX fix      {(r.GlibcxxFixApplied ? "applied (weak GLIBCXX_3.4.32 in a cached copy)" : "not needed")}");
        Console.WriteLine($"CPU threads      {r.CpuThreads}");
        Console.WriteLine($"CUDA             {(r.CudaAvailable ? "available" : "not available")}");
        foreach (var g in r.Gpus)
            Console.WriteLine($"  cuda:{g.Index}         {g.Name}, {g.MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, compute {g.ComputeCapability}, bf16 {(g.Bf16 ? "yes" : "no")}");
        Console.WriteLine($"bf16             {(r.Bf16Supported ? "supported" : "not supported")} on {r.Device}");
        Console.WriteLine($"device           {r.Device}");
        if (c is null) return;
        Console.WriteLine($"check            {(c.Passed ? "passed" : "FAILED")} on {c.Device}, {c.Size}x{c.Size}:");
        Console.WriteLine($"  autograd error {c.AutogradMaxError:E2}  bf16 matmul rel. error {c.Bf16MatmulRelError:E2}");
        Console.WriteLine($"  fp32 {c.Fp32Tflops:F3} TFLOP/s  bf16 {c.Bf16Tflops:F3} TFLOP/s");
    }
}
