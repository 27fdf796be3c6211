using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>How the ResNet-18 runs: ONNX Runtime on the CPU, or the same ONNX graph interpreted with TorchSharp on any device.</summary>
public enum FeatureBackend
{
    /// <summary>ONNX Runtime (CPU), the reference.</summary>
    Onnx,
    /// <summary>TorchSharp with the ONNX file's weights (CPU or CUDA); agrees with <see cref="Onnx"/> to ~1e-4 (tested).</summary>
    Torch,
}

/// <summary>
/// The feature space of FD-ResNet18: the 512-d global-average-pooled activations (before the classifier layer)
/// of the ImageNet-trained ResNet-18 that NuGet's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1 ships
/// as ONNX (a CNTK export).
/// </summary>
/// <remarks>
/// The graph's only output, <c>Pooling395_Output_0</c> [B, 512, 1, 1], is the 7×7 average pool over the last
/// residual stage (the FC layer was cut off in the export), i.e. exactly the pooled features.
/// Preprocessing, as the package's own <c>ResNetPreprocess.onnx</c> defines it and as ML.NET feeds it:
/// RGB in 0..255 (no scaling to 0..1), reordered to BGR, minus a per-pixel ImageNet mean image [3, 224, 224];
/// no division by a standard deviation. Before that, Snce repeats gray images to 3 channels and resizes
/// to 224×224 bilinearly (half-pixel centers, align_corners = false, no antialiasing).
/// Both backends run the same two graphs with the same weights.
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

    readonly Func<Tensor, Tensor> run;
    readonly IDisposable engine;

    /// <summary>Images per network call.</summary>
    public int BatchSize { get; }
    /// <summary>The folder the two .onnx files were loaded from.</summary>
    public string ModelDir { get; }
    /// <summary>Which engine computes the features (ONNX Runtime, or TorchSharp with the same weights).</summary>
    public FeatureBackend Backend { get; }

    /// <summary>Where the network runs (CPU for ONNX Runtime).</summary>
    public Device Device { get; }

    /// <param name="backend">ONNX Runtime (CPU) or TorchSharp (any device).</param>
    /// <param name="batchSize">images per call (≈ 1.2 MB of activations per image).</param>
    /// <param name="threads">ONNX Runtime intra-op threads; 0 lets it choose (one per physical core).</param>
    /// <param name="device">device of the TorchSharp backend (default CPU).</param>
    /// <param name="modelDir">folder holding ResNet18Onnx/ and ResNetPrepOnnx/; default: found with <see cref="LocateModelDir"/>.</param>
    public ResNet18Features(FeatureBackend backend = FeatureBackend.Onnx, int batchSize = 32, int threads = 0, Device? device = null, string? modelDir = null)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        if (backend == FeatureBackend.Onnx && device is not null && device.type != DeviceType.CPU)
            throw new ArgumentException($"the ONNX Runtime backend runs on the CPU only; use the torch backend for {device}");
        BatchSize = batchSize;
        Backend = backend;
        Device = device ?? CPU;
        ModelDir = modelDir ?? LocateModelDir();
        var preprocessBytes = Read(PreprocessFile);
        var networkBytes = Read(ModelFile);
        switch (backend)
        {
            case FeatureBackend.Onnx:
                var onnx = new OnnxEngine(preprocessBytes, networkBytes, threads);
                (engine, run) = (onnx, onnx.Run);
                break;
            case FeatureBackend.Torch:
                var torchEngine = new TorchEngine(preprocessBytes, networkBytes, Device);
                (engine, run) = (torchEngine, torchEngine.Run);
                break;
            default:
                throw new ArgumentException($"unknown feature backend {backend}; use onnx or torch");
        }
    }

    byte[] Read(string file)
    {
        var path = Path.Combine(ModelDir, file);
        if (!File.Exists(path)) throw new FileNotFoundException($"ResNet-18 model file missing: {path}", path);
        return File.ReadAllBytes(path);
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
    /// uint8 [N, C, H, W] (C = 1 or 3) → float32 [N, 3, 224, 224] RGB in 0..255 on <paramref name="device"/> (default CPU):
    /// gray repeated to 3 channels, bilinear resize to 224×224 (values clamped to 0..255).
    /// </summary>
    public static Tensor Resize(Tensor uint8Images, Device? device = null)
    {
        CheckImages(uint8Images);
        using var scope = NewDisposeScope();
        var x = uint8Images.to(device ?? CPU).to(ScalarType.Float32);
        if (x.shape[1] == 1) x = x.expand(-1, 3, -1, -1);
        if (x.shape[2] != InputSize || x.shape[3] != InputSize)
            x = nn.functional.interpolate(x, size: [InputSize, InputSize], mode: InterpolationMode.Bilinear, align_corners: false);
        return x.clamp(0, 255).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>uint8 images [N, C, H, W] → float32 features [N, 512] on the CPU.</summary>
    public Tensor Extract(Tensor uint8Images, IProgress<int>? progress = null)
    {
        CheckImages(uint8Images);
        var n = uint8Images.shape[0];
        var parts = new List<Tensor>();
        try
        {
            for (long start = 0; start < n; start += BatchSize)
            {
                var count = Math.Min(BatchSize, n - start);
                using (var scope = NewDisposeScope())
                    parts.Add(run(Resize(uint8Images.narrow(0, start, count), Device)).reshape(count, Dimension).cpu().MoveToOuterDisposeScope());
                progress?.Report((int)(start + count));
            }
            return n == 0 ? zeros(0, Dimension) : cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>Throws unless <paramref name="images"/> is uint8 [N, C, H, W] with C = 1 or 3.</summary>
    public static void CheckImages(Tensor images, string what = "images")
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4 || images.shape[1] is not (1 or 3))
            throw new ArgumentException(
                $"{what} must be uint8 [N, C, H, W] with C = 1 (gray) or 3 (RGB); got {images.dtype} [{string.Join(", ", images.shape)}]");
    }

    /// <inheritdoc/>
    public void Dispose() => engine.Dispose();

    /// <summary>ONNX Runtime sessions of the two graphs, batch dimension made dynamic.</summary>
    sealed class OnnxEngine : IDisposable
    {
        readonly InferenceSession preprocess, network;
        readonly RunOptions runOptions = new();

        public OnnxEngine(byte[] preprocessModel, byte[] networkModel, int threads)
        {
            using var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            };
            preprocess = new InferenceSession(OnnxBatchDimension.MakeDynamic(preprocessModel), options);
            network = new InferenceSession(OnnxBatchDimension.MakeDynamic(networkModel), options);
        }

        /// <summary>float32 [B, 3, 224, 224] RGB 0..255 (CPU) → [B, 512, 1, 1].</summary>
        public Tensor Run(Tensor rgb)
        {
            var count = rgb.shape[0];
            var pixels = rgb.data<float>().ToArray();
            using var input = OrtValue.CreateTensorValueFromMemory(pixels, [count, 3, InputSize, InputSize]);
            using var prepared = preprocess.Run(runOptions, [preprocess.InputNames.Single()], [input], [preprocess.OutputNames.Single()]);
            using var pooled = network.Run(runOptions, [network.InputNames.Single()], [prepared[0]], [network.OutputNames.Single()]);
            return tensor(pooled[0].GetTensorDataAsSpan<float>().ToArray(), [count, Dimension, 1, 1]);
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            preprocess.Dispose();
            network.Dispose();
            runOptions.Dispose();
        }
    }

    /// <summary>The same two graphs interpreted with TorchSharp.</summary>
    sealed class TorchEngine(byte[] preprocessModel, byte[] networkModel, Device device) : IDisposable
    {
        readonly TorchOnnxInterpreter preprocess = new(OnnxGraph.Read(preprocessModel), device);
        readonly TorchOnnxInterpreter network = new(OnnxGraph.Read(networkModel), device);

        public Tensor Run(Tensor rgb)
        {
            using var prepared = preprocess.Run(rgb);
            return network.Run(prepared);
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            preprocess.Dispose();
            network.Dispose();
        }
    }
}
