using Snce.Diagnostics;

namespace Snce.Bench;

/// <summary>fp32 vs bf16 square matmul rate: the baseline every other GPU figure is read against.</summary>
public static class MatmulBench
{
    public static int Run(string[] argv)
    {
        var a = new BenchArgs(argv);
        var device = a.Device();
        var sizes = a.Longs("sizes", "512,1024");
        var outDir = a.Get("out", "docs/benchmarks");
        a.RejectUnknown();
        var report = new BenchReport("matmul", "snce-bench matmul " + string.Join(' ', argv));
        var sys = SystemReport.Collect(device);
        report.Machine = sys.Gpus.Count > 0 && device.type == TorchSharp.DeviceType.CUDA ? sys.Gpus[0].Name : $"CPU, {sys.CpuThreads} threads";
        foreach (var n in sizes)
        {
            var r = SelfCheck.Run(device, (int)n, repeats: 10);
            report.Add(new() { ["n"] = n, ["fp32_tflops"] = r.Fp32Tflops, ["bf16_tflops"] = r.Bf16Tflops, ["bf16_over_fp32"] = r.Bf16Tflops / r.Fp32Tflops });
        }
        report.Save(outDir);
        return 0;
    }
}
