using System.Diagnostics;
using Snce.Evaluation;
using static TorchSharp.torch;

namespace Snce.Bench;

/// <summary>
/// FD-ResNet18 feature extraction rate (images/s, 28×28 gray upsampled to 224) for the ONNX Runtime backend (CPU)
/// and the TorchSharp backend on the chosen device; checks first that the two agree.
/// </summary>
public static class FeaturesBench
{
    public static int Run(string[] argv)
    {
        var a = new BenchArgs(argv);
        var device = a.Device();
        var images = a.Int("images", 256);
        var batches = a.Longs("batches", "32");
        var backends = a.List("backends", device.type == TorchSharp.DeviceType.CUDA ? "torch,onnx" : "onnx,torch");
        var outDir = a.Get("out", "docs/benchmarks");
        a.RejectUnknown();
        var report = new BenchReport("features", "snce-bench features " + string.Join(' ', argv));
        var sys = Snce.Diagnostics.SystemReport.Collect(device);
        report.Machine = sys.Gpus.Count > 0 && device.type == TorchSharp.DeviceType.CUDA ? $"{sys.Gpus[0].Name}; CPU {sys.CpuThreads} threads" : $"CPU, {sys.CpuThreads} threads";
        using var x = randint(0, 256, [images, 1, 28, 28], generator: new Generator(1)).to(ScalarType.Byte);
        using (var check = x.narrow(0, 0, 4))
        using (var onnx = new ResNet18Features(FeatureBackend.Onnx))
        using (var torch = new ResNet18Features(FeatureBackend.Torch, device: device))
        using (var fa = onnx.Extract(check))
        using (var fb = torch.Extract(check))
            report.Notes.Add($"onnx vs torch ({device}) max abs feature difference on 4 images: {(fa - fb).abs().max().item<float>():E2}");
        foreach (var backend in backends)
            foreach (var batch in batches)
            {
                var kind = Enum.Parse<FeatureBackend>(backend, ignoreCase: true);
                using var extractor = new ResNet18Features(kind, (int)batch, device: kind == FeatureBackend.Torch ? device : null);
                using (var warm = x.narrow(0, 0, Math.Min((int)batch, images))) extractor.Extract(warm).Dispose();
                var clock = Stopwatch.StartNew();
                using (var f = extractor.Extract(x)) _ = f.sum().item<float>();
                var seconds = clock.Elapsed.TotalSeconds;
                report.Add(new()
                {
                    ["backend"] = backend, ["device"] = kind == FeatureBackend.Torch ? device.ToString() : "cpu", ["batch"] = batch,
                    ["images"] = images, ["seconds"] = seconds, ["images_per_s"] = images / seconds,
                });
            }
        report.Save(outDir);
        return 0;
    }
}
