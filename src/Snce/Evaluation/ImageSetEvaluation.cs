using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>Class accuracy of class-conditional samples, always with the classifier's own held-out accuracy.</summary>
/// <param name="Accuracy">share of samples the classifier assigns to their conditioning class.</param>
/// <param name="ClassifierHeldOutAccuracy">the classifier's accuracy on real validation images (the ceiling to read it against).</param>
/// <param name="ClassifierDataSet">what the classifier was trained on.</param>
public sealed record ClassAccuracyResult(double Accuracy, double ClassifierHeldOutAccuracy, string ClassifierDataSet);

/// <summary>Metrics of a set of generated images against a data set's validation split.</summary>
/// <param name="DataSet">the real data set.</param>
/// <param name="FeatureSpace">the feature space of FD, precision and recall (<see cref="ResNet18Features.Id"/>).</param>
/// <param name="N">generated images evaluated.</param>
/// <param name="RealCount">real validation images.</param>
/// <param name="Fd">FD-ResNet18 (Fréchet distance in ResNet-18 pooled features; not Inception FID).</param>
/// <param name="Precision">improved precision (k-NN manifold of the real features).</param>
/// <param name="Recall">improved recall (k-NN manifold of the generated features).</param>
/// <param name="K">neighbourhood size of precision and recall.</param>
/// <param name="ClassAccuracy">null when the images have no labels or no classifier was given.</param>
/// <param name="Memorization">copies and nearness to the training split; null when no training reference was given.</param>
public sealed record ImageSetEvaluation(
    string DataSet, string FeatureSpace, int N, int RealCount, double Fd, double Precision, double Recall, int K, ClassAccuracyResult? ClassAccuracy,
    MemorizationResult? Memorization = null);

/// <summary>What the memorization metrics compare generated images with: the training split's features and, optionally, token sequences.</summary>
/// <param name="Train">the training split's reference (<see cref="RealFeatureCache.GetOrCompute"/> with the train split).</param>
/// <param name="GeneratedTokens">the generated images' token sequences [N, T] in the images' order, or null.</param>
/// <param name="TrainSequences">the training token sequences, or null.</param>
/// <param name="ValidationNnDistance">the mean validation → nearest training distance when known
/// (<see cref="RealFeatureCache.ValidationNearestTrainDistance"/>); null computes it.</param>
public sealed record MemorizationInputs(RealReference Train, Tensor? GeneratedTokens = null, TrainingSequences? TrainSequences = null,
    double? ValidationNnDistance = null);

/// <summary>Evaluates generated images: FD-ResNet18, precision and recall against the real validation split, and class accuracy.</summary>
public static class ImageSetEvaluator
{
    /// <param name="images">generated uint8 [N, C, H, W], same C, H, W as the real images, N ≥ 2 (and &gt; k).</param>
    /// <param name="labels">int64 [N] conditioning classes, or null.</param>
    /// <param name="real">the validation split's reference (<see cref="RealFeatureCache.GetOrCompute"/>).</param>
    /// <param name="extractor">the ResNet-18 feature extractor.</param>
    /// <param name="classifier">scores class accuracy when <paramref name="labels"/> are given.</param>
    /// <param name="k">precision/recall neighbourhood size.</param>
    /// <param name="progress">images featurized so far.</param>
    /// <param name="memorization">the training references for <see cref="ImageSetEvaluation.Memorization"/>, or null to skip it.</param>
    /// <param name="lap">called with a phase's name as each phase ends (generated_features, fd, precision_recall, class_accuracy,
    /// memorization), so a caller can time them.</param>
    public static ImageSetEvaluation Evaluate(Tensor images, Tensor? labels, RealReference real, ResNet18Features extractor,
        TrainedClassifier? classifier = null, int k = PrecisionRecall.DefaultK, IProgress<int>? progress = null, MemorizationInputs? memorization = null,
        Action<string>? lap = null)
    {
        ResNet18Features.CheckImages(images, "generated images");
        var n = images.shape[0];
        if (n < 2) throw new ArgumentException($"need at least 2 generated images for a covariance; got {n}");
        var (c, h, w) = real.ImageShape;
        if (images.shape[1] != c || images.shape[2] != h || images.shape[3] != w)
            throw new ArgumentException(
                $"generated images are [{images.shape[1]}, {images.shape[2]}, {images.shape[3]}] per image but the real images of '{real.DataSet}' are [{c}, {h}, {w}]; " +
                "sample at the data set's resolution and channels (or load the data with matching --size/--channels)");
        if (labels is not null && (labels.dim() != 1 || labels.shape[0] != n))
            throw new ArgumentException($"labels must be [N] with N = {n}; got [{string.Join(", ", labels.shape)}]");

        using var features = extractor.Extract(images, progress);
        lap?.Invoke("generated_features");
        using var stats = FeatureStatistics.Of(features);
        var fd = FrechetDistance.Compute(real.Statistics, stats);
        lap?.Invoke("fd");
        // The distance matrices (precision/recall, nearest training neighbours) on the extractor's device: on CUDA they
        // take milliseconds where the CPU needed seconds per evaluation.
        var pr = PrecisionRecall.Compute(real.Features, features, k, device: extractor.Device);
        lap?.Invoke("precision_recall");
        ClassAccuracyResult? classAccuracy = null;
        if (labels is not null && classifier is not null)
            classAccuracy = new ClassAccuracyResult(classifier.Model.Accuracy(images, labels), classifier.Info.HeldOutAccuracy, classifier.Info.DataSet);
        lap?.Invoke("class_accuracy");
        var memo = memorization is { } m ? Snce.Evaluation.Memorization.Compute(features, stats, real, m.Train, m.GeneratedTokens, m.TrainSequences,
            m.ValidationNnDistance, extractor.Device) : null;
        lap?.Invoke("memorization");
        return new ImageSetEvaluation(real.DataSet, ResNet18Features.Id, (int)n, real.Count, fd, pr.Precision, pr.Recall, k, classAccuracy, memo);
    }
}
