using Snce.Data;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// Vendor success rates of one set of translations, each the share of images a vendor classifier assigns to the target vendor,
/// next to the trivial baselines.
/// </summary>
/// <param name="TargetVendor">the vendor the pairs translate into.</param>
/// <param name="Generated">the run's translations.</param>
/// <param name="CopySource">the sources themselves (drawn by the source vendor: should be low).</param>
/// <param name="NearestTrainingTarget">the nearest training pair's target (a real image of the target vendor, of another emoji).</param>
/// <param name="GroundTruth">the held-out targets themselves: the ceiling, the classifier's own accuracy on these images.</param>
/// <param name="Classifier">the vendor classifier's checkpoint info (its vendors and held-out accuracy).</param>
public sealed record VendorSuccessScores(string TargetVendor, double Generated, double CopySource, double NearestTrainingTarget, double GroundTruth, ClassifierInfo Classifier);

/// <summary>
/// The vendor success rate of translations: the fraction of images a vendor classifier (<c>snce classifier train --label vendor</c>)
/// assigns to the pair's target vendor.
/// </summary>
public static class VendorSuccess
{
    /// <summary>Share of <paramref name="predicted"/> labels (int64 [N]) equal to <paramref name="target"/>; throws when N = 0.</summary>
    public static double Rate(Tensor predicted, long target)
    {
        if (predicted.dim() != 1 || predicted.shape[0] == 0)
            throw new ArgumentException($"predicted labels must be a non-empty [N]; got [{string.Join(", ", predicted.shape)}]");
        using var hit = predicted.eq(target);
        using var share = hit.to_type(ScalarType.Float64).mean();
        return share.item<double>();
    }

    /// <summary>The share of <paramref name="images"/> (uint8 [N, C, S, S]) that <paramref name="classifier"/> assigns to label <paramref name="target"/>.</summary>
    public static double Rate(ImageClassifier classifier, Tensor images, long target)
    {
        using var predicted = classifier.Predict(images);
        return Rate(predicted, target);
    }

    /// <summary>
    /// The label of <paramref name="targetVendor"/> in <paramref name="classifier"/>, after checking that it is a vendor classifier that
    /// knows that vendor and takes <paramref name="channels"/>-channel <paramref name="size"/>-px images; each failure an
    /// <see cref="ArgumentException"/> naming what differs and how to train a fitting one.
    /// </summary>
    public static int TargetLabel(TrainedClassifier classifier, EmojiVendor targetVendor, int channels, int size)
    {
        var info = classifier.Info;
        var vendor = EnumNames<EmojiVendor>.Name(targetVendor);
        var retrain = $"snce classifier train --data emoji --label vendor --size {size} --channels {channels} --out DIR";
        if (info.Label != ClassifierLabel.Vendor)
            throw new ArgumentException($"the classifier trained on {info.DataSet} is a class classifier (classes [{string.Join(", ", info.Classes)}]), " +
                $"not a vendor classifier; train one with '{retrain}'");
        var label = Array.IndexOf(info.Classes, vendor);
        if (label < 0)
            throw new ArgumentException($"the vendor classifier knows the vendors [{string.Join(", ", info.Classes)}], not the pairs' target vendor {vendor}; " +
                $"train one that does with '{retrain} --vendors {string.Join(",", info.Classes.Append(vendor))}'");
        if (info.Config.Channels != channels || info.Config.ImageSize != size)
            throw new ArgumentException($"the vendor classifier takes {info.Config.Channels}-channel {info.Config.ImageSize}-px images, the translations are " +
                $"{channels}-channel {size}-px (the tokenizer's); train one at that size with '{retrain}'");
        return label;
    }
}
