using Snce.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Snce.Evaluation;

/// <summary>Architecture of the evaluation classifier; stored in its checkpoint so the loader rebuilds it.</summary>
/// <param name="Channels">image channels (1 or 3).</param>
/// <param name="ImageSize">image side length (square images).</param>
/// <param name="Classes">number of classes.</param>
/// <param name="Width">channels of the first stage (the second has twice as many).</param>
public sealed record ClassifierConfig(int Channels, int ImageSize, int Classes, int Width = 32)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (Channels is not (1 or 3)) throw new ArgumentException($"classifier channels must be 1 or 3; got {Channels}");
        if (ImageSize < 8) throw new ArgumentException($"classifier image size must be at least 8; got {ImageSize}");
        if (Classes < 2) throw new ArgumentException($"a classifier needs at least 2 classes; got {Classes}");
        if (Width < 1) throw new ArgumentException($"classifier width must be positive; got {Width}");
    }
}

/// <summary>
/// A small CNN that scores class-conditional samples: two stages of (conv3×3–BN–ReLU)×2 + 2×2 max-pool,
/// adaptive average pool to 4×4, then a 128-unit MLP head. Width 32: ≈ 0.33 M parameters (at 1 channel, 10 classes).
/// Input: uint8 images [N, C, H, W]; it maps them to [−1, 1] itself (<see cref="ImageDataset.ToModelRange"/>).
/// </summary>
public sealed class ImageClassifier : Module<Tensor, Tensor>
{
    private readonly Sequential features;
    private readonly Sequential head;

    /// <summary>The architecture the network was built from (what its checkpoint stores).</summary>
    public ClassifierConfig Config { get; }

    /// <summary>Builds the network for <paramref name="config"/> (validated first), freshly initialized from the global seed.</summary>
    public ImageClassifier(ClassifierConfig config) : base("classifier")

    {
        config.Validate();
        Config = config;
        var w = config.Width;
        features = Sequential(
            ("conv1", Conv2d(config.Channels, w, 3, padding: 1, bias: false)), ("bn1", BatchNorm2d(w)), ("relu1", ReLU()),
            ("conv2", Conv2d(w, w, 3, padding: 1, bias: false)), ("bn2", BatchNorm2d(w)), ("relu2", ReLU()),
            ("pool1", MaxPool2d(2)),
            ("conv3", Conv2d(w, 2 * w, 3, padding: 1, bias: false)), ("bn3", BatchNorm2d(2 * w)), ("relu3", ReLU()),
            ("conv4", Conv2d(2 * w, 2 * w, 3, padding: 1, bias: false)), ("bn4", BatchNorm2d(2 * w)), ("relu4", ReLU()),
            ("pool2", AdaptiveAvgPool2d(4)));
        head = Sequential(
            ("flatten", Flatten()), ("dropout", Dropout(0.25)),
            ("fc1", Linear(2 * w * 16, 128)), ("relu", ReLU()),
            ("fc2", Linear(128, config.Classes)));
        RegisterComponents();
    }

    /// <summary>uint8 [N, C, H, W] → logits [N, classes].</summary>
    public override Tensor forward(Tensor uint8Images)
    {
        using var scope = NewDisposeScope();
        var x = ImageDataset.ToModelRange(uint8Images);
        return head.call(features.call(x)).MoveToOuterDisposeScope();
    }

    /// <summary>Predicted class of each image (int64 [N], on the CPU), in eval mode, in batches.</summary>
    public Tensor Predict(Tensor uint8Images, int batchSize = 512)
    {
        CheckImages(uint8Images);
        var device = parameters().First().device;
        var wasTraining = training;
        eval();
        try
        {
            using var noGrad = no_grad();
            var parts = new List<Tensor>();
            for (long i = 0; i < uint8Images.shape[0]; i += batchSize)
            {
                using var scope = NewDisposeScope();
                var batch = uint8Images.narrow(0, i, Math.Min(batchSize, uint8Images.shape[0] - i)).to(device);
                parts.Add(call(batch).argmax(1).cpu().MoveToOuterDisposeScope());
            }
            using var joined = cat(parts, 0);
            foreach (var p in parts) p.Dispose();
            return joined.clone();
        }
        finally
        {
            train(wasTraining);
        }
    }

    /// <summary>Share of images whose predicted class equals <paramref name="labels"/> (int64 [N]).</summary>
    public double Accuracy(Tensor uint8Images, Tensor labels, int batchSize = 512)
    {
        if (labels.dim() != 1 || labels.shape[0] != uint8Images.shape[0])
            throw new ArgumentException($"labels must be [N] with N = {uint8Images.shape[0]} images; got [{string.Join(", ", labels.shape)}]");
        if (labels.shape[0] == 0) throw new ArgumentException("no images to classify");
        using var predicted = Predict(uint8Images, batchSize);
        using var same = predicted.eq(labels.cpu().to(ScalarType.Int64));
        return same.to(ScalarType.Float64).mean().item<double>();
    }

    void CheckImages(Tensor images)
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4 || images.shape[1] != Config.Channels
            || images.shape[2] != Config.ImageSize || images.shape[3] != Config.ImageSize)
            throw new ArgumentException(
                $"the classifier takes uint8 [N, {Config.Channels}, {Config.ImageSize}, {Config.ImageSize}] images; got {images.dtype} [{string.Join(", ", images.shape)}]");
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            features.Dispose();
            head.Dispose();
        }
        base.Dispose(disposing);
    }
}
