using System.ComponentModel;
using System.Text.Json.Serialization;
using Snce.Data;
using Snce.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>How to train the evaluation classifier.</summary>
public sealed record ClassifierTrainOptions
{
    /// <summary>Optimizer steps, ≥ 1.</summary>
    public int Steps { get; init; } = 3000;
    /// <summary>Training images per step (drawn with replacement), ≥ 2.</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>Peak AdamW learning rate, decayed to 0 by a cosine over <see cref="Steps"/>.</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>AdamW decoupled weight decay.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Channels of the CNN's first stage (<see cref="ClassifierConfig.Width"/>).</summary>
    public int Width { get; init; } = 32;
    /// <summary>Seeds the initialization and the batches drawn at every step.</summary>
    public long Seed { get; init; } = 0;
    /// <summary>What the data set's labels stand for, recorded in the checkpoint: its classes, or the vendor that drew each image (<see cref="EmojiVendorSet"/>).</summary>
    public ClassifierLabel Label { get; init; } = ClassifierLabel.Class;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"steps must be at least 1; got {Steps}");
        if (BatchSize < 2) throw new ArgumentException($"batch size must be at least 2; got {BatchSize}");
        if (!(LearningRate > 0)) throw new ArgumentException($"learning rate must be positive; got {LearningRate}");
    }
}

/// <summary>One training step's loss, for progress display.</summary>
public readonly record struct ClassifierStep(int Step, int Steps, double Loss);

/// <summary>A trained classifier with what it was trained on and how well it does on held-out images.</summary>
public sealed record TrainedClassifier(ImageClassifier Model, ClassifierInfo Info);

/// <summary>What a classifier's labels stand for.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ClassifierLabel>)), Description("--label")]
public enum ClassifierLabel
{
    /// <summary>The data set's classes (class accuracy of class-conditional samples).</summary>
    [JsonStringEnumMemberName("class")] Class,
    /// <summary>The emoji vendor that drew the image (vendor success rate of translations).</summary>
    [JsonStringEnumMemberName("vendor")] Vendor,
}

/// <summary>What a classifier checkpoint records besides the weights.</summary>
/// <param name="DataSet">the data set it was trained on.</param>
/// <param name="Classes">label names, index = label: class names, or vendor names for a vendor classifier.</param>
/// <param name="HeldOutAccuracy">accuracy on the data set's validation split (never trained on).</param>
/// <param name="HeldOutCount">validation images it was measured on.</param>
/// <param name="TrainCount">training images.</param>
/// <param name="Steps">optimizer steps.</param>
/// <param name="Config">architecture.</param>
/// <param name="Label">what the labels stand for (checkpoints written before it existed are class classifiers).</param>
public sealed record ClassifierInfo(string DataSet, string[] Classes, double HeldOutAccuracy, int HeldOutCount, int TrainCount, int Steps, ClassifierConfig Config,
    ClassifierLabel Label = ClassifierLabel.Class);

/// <summary>Trains <see cref="ImageClassifier"/> on a data set's training split and measures it on the validation split.</summary>
public static class ClassifierTraining
{
    /// <summary>
    /// Trains a fresh classifier with AdamW and cross-entropy on the labeled training images of <paramref name="data"/>, then
    /// measures held-out accuracy on its validation split; stopped by <paramref name="cancel"/>, it measures the part-trained model and its info records the steps done.
    /// </summary>
    public static TrainedClassifier Train(ImageDataset data, ClassifierTrainOptions options, Device device, IProgress<ClassifierStep>? progress = null,

        CancellationToken cancel = default)
    {
        options.Validate();
        if (data.Classes.Length < 2) throw new ArgumentException($"data set '{data.Name}' has {data.Classes.Length} classes; a classifier needs at least 2");
        if (data.Size != data.Images.shape[3]) throw new ArgumentException($"data set '{data.Name}' has non-square images");
        using var trainIdx = LabeledIndices(data, ImageDataset.TrainSplit);
        using var valIdx = LabeledIndices(data, ImageDataset.ValidationSplit);
        if (trainIdx.shape[0] < 2) throw new ArgumentException($"data set '{data.Name}' has {trainIdx.shape[0]} labeled training images; need at least 2");
        if (valIdx.shape[0] < 1) throw new ArgumentException($"data set '{data.Name}' has no labeled validation images to measure the classifier on");

        var config = new ClassifierConfig(data.Channels, data.Size, data.Classes.Length, options.Width);
        // The run's own random stream: initialization and dropout draw from the default generators seeded with the run's seed
        // (as torch.manual_seed did), and the caller's CPU stream is given back when training ends.
        using var seeded = DeviceRandom.SeededDefault(options.Seed, CPU);
        if (device.type == DeviceType.CUDA) DeviceRandom.SeedDefault(options.Seed, device);
        var model = new ImageClassifier(config);
        model.to(device);
        using var images = data.Images.index_select(0, trainIdx).to(device);
        using var labels = data.Labels.index_select(0, trainIdx).to(device);
        // CPU generator: TorchSharp 0.107 cannot make CUDA ones (a CUDA run failed here on the H200); the indices move to the device.
        using var generator = new Generator((ulong)options.Seed);
        using var optimizer = optim.AdamW(model.parameters(), options.LearningRate, weight_decay: options.WeightDecay);
        model.train();
        var n = images.shape[0];
        var done = 0;
        for (var step = 1; step <= options.Steps && !cancel.IsCancellationRequested; step++, done++)
        {
            using var scope = NewDisposeScope();
            var lr = LrSchedule.CosineFromStepOne(options.LearningRate, step, options.Steps);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            var pick = randint(n, [Math.Min(options.BatchSize, n)], generator: generator).to(device);
            var loss = nn.functional.cross_entropy(model.call(images.index_select(0, pick)), labels.index_select(0, pick));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            if (progress is not null && (step == 1 || step % 50 == 0 || step == options.Steps))   // step 1: the bar shows at once
                progress.Report(new ClassifierStep(step, options.Steps, loss.item<float>()));
        }
        model.eval();
        using var valImages = data.Images.index_select(0, valIdx);
        using var valLabels = data.Labels.index_select(0, valIdx);
        var accuracy = model.Accuracy(valImages, valLabels);
        var info = new ClassifierInfo(data.Name, data.Classes, accuracy, (int)valIdx.shape[0], (int)n, done, config, options.Label);
        return new TrainedClassifier(model, info);
    }

    static Tensor LabeledIndices(ImageDataset data, byte split)
    {
        using var scope = NewDisposeScope();
        var mask = data.Split.eq(split).logical_and(data.Labels.ge(0));
        return nonzero(mask).squeeze(1).MoveToOuterDisposeScope();
    }
}
