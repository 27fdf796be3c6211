using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Diagnostics;

/// <summary>Result of <see cref="SelfCheck.Run"/>: each check's measured value, so a caller can judge it.</summary>
/// <param name="Device">where it ran.</param>
/// <param name="Size">matrix size (square).</param>
/// <param name="AutogradMaxError">max |autograd grad − closed form| for d/dA sum((A·B)²) = 2(A·B)Bᵀ.</param>
/// <param name="Bf16MatmulRelError">relative Frobenius error of a bf16 matmul against fp32 on the same inputs.</param>
/// <param name="Fp32Tflops">fp32 matmul rate on the device.</param>
/// <param name="Bf16Tflops">bf16 matmul rate on the device.</param>
public sealed record SelfCheckResult(string Device, int Size, double AutogradMaxError, double Bf16MatmulRelError, double Fp32Tflops, double Bf16Tflops)
{
    /// <summary>bf16 keeps 8 mantissa bits: a relative error under 1e-2 on random data is a working bf16 matmul.</summary>
    public bool Passed => AutogradMaxError < 1e-3 && Bf16MatmulRelError < 1e-2;
}

/// <summary>A small computation that proves the native stack works on a device: autograd, fp32 and bf16 matmul.</summary>
public static class SelfCheck
{
    /// <summary>Runs the checks with square matrices of <paramref name="size"/> on <paramref name="device"/>.</summary>
    public static SelfCheckResult Run(Device device, int size = 512, int repeats = 5)
    {
        using var scope = NewDisposeScope();
        // TorchSharp 0.107 creates CPU generators only (THSGenerator_new ignores the device): draw on the CPU, then move.
        var gen = new Generator(1234);
        var a = randn([size, size], generator: gen).to(device);
        var b = randn([size, size], generator: gen).to(device);

        // Autograd against the closed form.
        var aLeaf = a.clone().requires_grad_(true);
        var prod = aLeaf.matmul(b);
        prod.pow(2).sum().backward();
        var expected = 2 * prod.detach().matmul(b.t());
        var gradErr = (aLeaf.grad! - expected).abs().max().item<float>() / Math.Max(1f, expected.abs().max().item<float>());

        var exact = a.matmul(b);
        var half = a.to(ScalarType.BFloat16).matmul(b.to(ScalarType.BFloat16)).to(ScalarType.Float32);
        var relErr = ((half - exact).norm() / exact.norm()).item<float>();

        return new SelfCheckResult(device.ToString(), size, gradErr, relErr,
            Rate(a, b, repeats), Rate(a.to(ScalarType.BFloat16), b.to(ScalarType.BFloat16), repeats));
    }

    static double Rate(Tensor a, Tensor b, int repeats)
    {
        using (NewDisposeScope()) a.matmul(b); // warm-up
        Sync(a.device);
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < repeats; i++)
            using (NewDisposeScope()) a.matmul(b);
        Sync(a.device);
        var n = (double)a.shape[0];
        return 2 * n * n * n * repeats / sw.Elapsed.TotalSeconds / 1e12;
    }

    static void Sync(Device d)
    {
        if (d.type == DeviceType.CUDA) cuda.synchronize(d);
    }
}
