using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// The feature space of FD-ResNet18: the 512-d global-average-pooled activations (before the classifier layer)
/// of the ImageNet-trained ResNet-18 that NuGet's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1 ships
/// as ONNX (a CNTK export), run with ONNX Runtime on the CPU.
/// </summary>
/// <remarks>
/// The graph's only output, <c>Pooling395_Output_0</c> [B, 512, 1, 1], is the 7×7 average pool over the last
/// residual stage (the FC layer was cut off in the export), i.e. exactly the pooled features.
/// Preprocessing, as the package's own <c>ResNetPreprocess.onnx</c> defines it and as ML.NET feeds it:
/// RGB in 0..255 (no scaling to 0..1), reordered to BGR, minus a per-pixel ImageNet mean image [3, 224, 224];
/// no division by a standard deviation. Before that, Snce repeats gray images to 3 channels and resizes
/// to 224×224 bilinearly (half-pixel centers, align_corners = false, no antialiasing).
/// </remarks>
public sealed class ResNet18Features : IDisposable
{
    /// <summary>Feature dimension.</summary>
    public const int Dimension = 512;
    /// <summary>Input side length the network was trained at.</summary>
    public const int InputSize = 224;
    /// <summary>The NuGet package and version the model comes from.</summary>
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18", PackageVersion = "0.23.1";
    /// <summary>Names the feature space in cache keys and reports; change it whenever preprocessing changes.</summary>
    public const string Id = "fd-resnet18-onnx-0.23.1-pool512-bilinear224";

    const string ModelFile = "ResNet18Onnx/ResNet18.onnx", PreprocessFile = "ResNetPrepOnnx/ResNetPreprocess.onnx";

    readonly InferenceSession _preprocess, _network;
    readonly string _preprocessInput, _preprocessOutput, _networkInput, _networkOutput;

    /// <summary>Images per ONNX Runtime call.</summary>
    public int BatchSize { get; }
    /// <summary>The folder the two .onnx files were loaded from.</summary>
    public string ModelDir { get; }

    /// <param name="batchSize">images per call (memory ≈ 1.2 MB per image of activations).</param>
    /// <param name="threads">ONNX Runtime intra-op threads; 0 lets it choose (one per physical core).</param>
    /// <param name="modelDir">folder holding ResNet18Onnx/ and ResNetPrepOnnx/; default: found with <see cref="LocateModelDir"/>.</param>
    public ResNet18Features(int batchSize = 32, int threads = 0, string? modelDir = null)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        BatchSize = batchSize;
        ModelDir = modelDir ?? LocateModelDir();
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        _preprocess = Open(Path.Combine(ModelDir, PreprocessFile), options);
        _network = Open(Path.Combine(ModelDir, ModelFile), options);
        (_preprocessInput, _preprocessOutput) = (_preprocess.InputNames.Single(), _preprocess.OutputNames.Single());
        (_networkInput, _networkOutput) = (_network.InputNames.Single(), _network.OutputNames.Single());
    }

    static InferenceSession Open(string path, SessionOptions options)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ResNet-18 model file missing: {path}", path);
        return new InferenceSession(OnnxBatchDimension.MakeDynamic(File.ReadAllBytes(path)), options);
    }

    /// <summary>
    /// Finds the folder with the two .onnx files: next to the Snce assembly (where the build copies them), else in
    /// the NuGet package cache ($NUGET_PACKAGES or ~/.nuget/packages).
    /// </summary>
    public static string LocateModelDir()
    {
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } n ? n
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, "DnnImageModels"),
            Path.Combine(Path.GetDirectoryName(typeof(ResNet18Features).Assembly.Location) ?? "", "DnnImageModels"),
            Path.Combine(nugetRoot, PackageId.ToLowerInvariant(), PackageVersion, "tools", "DnnImageModels"),
        ];
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, ModelFile)) && File.Exists(Path.Combine(d, PreprocessFile)))
            ?? throw new FileNotFoundException(
                $"the ImageNet ResNet-18 of NuGet package {PackageId} {PackageVersion} was not found in: {string.Join(", ", candidates)}. " +
                "Build Snce with 'dotnet build' (it restores the package and copies the model next to the program).");
    }

    /// <summary>
    /// uint8 [N, C, H, W] (C = 1 or 3, any device) → float32 [N, 3, 224, 224] RGB in 0..255, on the CPU:
    /// gray repeated to 3 channels, bilinear resize to 224×224 (values clamped to 0..255).
    /// </summary>
    public static Tensor Resize(Tensor uint8Images)
    {
        CheckImages(uint8Images);
        using var scope = NewDisposeScope();
        var x = uint8Images.cpu().to(ScalarType.Float32);
        if (x.shape[1] == 1) x = x.expand(-1, 3, -1, -1);
        if (x.shape[2] != InputSize || x.shape[3] != InputSize)
            x = nn.functional.interpolate(x, size: [InputSize, InputSize], mode: InterpolationMode.Bilinear, align_corners: false);
        return x.clamp(0, 255).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>uint8 images [N, C, H, W] → float32 features [N, 512] on the CPU.</summary>
    public Tensor Extract(Tensor uint8Images, IProgress<int>? progress = null)
    {
        CheckImages(uint8Images);
        var n = (int)uint8Images.shape[0];
        var features = new float[(long)n * Dimension];
        using var runOptions = new RunOptions();
        for (var start = 0; start < n; start += BatchSize)
        {
            var count = Math.Min(BatchSize, n - start);
            float[] pixels;
            using (var scope = NewDisposeScope())
                pixels = Resize(uint8Images.narrow(0, start, count)).data<float>().ToArray();
            using var input = OrtValue.CreateTensorValueFromMemory(pixels, [count, 3, InputSize, InputSize]);
            using var prepared = _preprocess.Run(runOptions, [_preprocessInput], [input], [_preprocessOutput]);
            using var pooled = _network.Run(runOptions, [_networkInput], [prepared[0]], [_networkOutput]);
            pooled[0].GetTensorDataAsSpan<float>().CopyTo(features.AsSpan(start * Dimension, count * Dimension));
            progress?.Report(start + count);
        }
        return tensor(features, [n, Dimension]);
    }

    /// <summary>Throws unless <paramref name="images"/> is uint8 [N, C, H, W] with C = 1 or 3.</summary>
    public static void CheckImages(Tensor images, string what = "images")
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4 || images.shape[1] is not (1 or 3))
            throw new ArgumentException(
                $"{what} must be uint8 [N, C, H, W] with C = 1 (gray) or 3 (RGB); got {images.dtype} [{string.Join(", ", images.shape)}]");
    }

    public void Dispose()
    {
        _preprocess.Dispose();
        _network.Dispose();
    }
}
