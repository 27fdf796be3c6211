using Snce.Evaluation;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

/// <summary>Memorization metrics against independent references: exact copies give ratio 0 and copy fraction 1; fresh draws ≈ 1 and 0.</summary>
public class MemorizationTests
{
    static RealReference Reference(Tensor features) => new()
    {
        Key = "test", DataSet = "test", Features = features, Statistics = FeatureStatistics.Of(features), ImageShape = (1, 8, 8),
    };

    [Fact]
    public void CopiesOfTrainingImagesGiveRatioZeroAndHeldOutDrawsGiveRatioOne()
    {
        manual_seed(0);
        using var train = Reference(randn(2000, 16));
        using var validation = Reference(randn(400, 16));                 // the same distribution, disjoint draws
        using var copies = train.Features.narrow(0, 100, 300).clone();
        using var fresh = randn(400, 16);
        using var copyStats = FeatureStatistics.Of(copies);
        using var freshStats = FeatureStatistics.Of(fresh);

        var copied = Memorization.Compute(copies, copyStats, validation, train);
        Assert.InRange(copied.NnRatio, 0, 0.005);                           // 0 up to float32 round-off in ‖a‖² + ‖b‖² − 2a·b
        Assert.InRange(copied.GeneratedNnDistance, 0, 0.05 * copied.ValidationNnDistance);
        var novel = Memorization.Compute(fresh, freshStats, validation, train);
        Assert.InRange(novel.NnRatio, 0.9, 1.1);
        Assert.Equal(2000, novel.TrainCount);
        Assert.Equal(FrechetDistance.Compute(train.Statistics, freshStats), novel.FdTrain, 9);
        Assert.Null(novel.CopyFraction);
    }

    [Fact]
    public void TheCachedValidationDistanceIsTheComputedOneAndIsKeyedByBothReferences()
    {
        manual_seed(4);
        var dir = Path.Combine(Path.GetTempPath(), "snce-nn-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var train = Reference(randn(700, 8));
            using var validation = Reference(randn(90, 8));
            var direct = Memorization.MeanValidationDistance(validation, train);
            var first = RealFeatureCache.ValidationNearestTrainDistance(validation, train, dir);
            Assert.Equal(direct, first, 12);
            Assert.Single(Directory.GetFiles(dir, "nn-*.json"));

            // A second call reads the entry: proven by tampering with the stored value.
            var path = Directory.GetFiles(dir, "nn-*.json")[0];
            File.WriteAllText(path, File.ReadAllText(path).Replace(first.ToString("R", System.Globalization.CultureInfo.InvariantCulture), "1234.5"));
            Assert.Equal(1234.5, RealFeatureCache.ValidationNearestTrainDistance(validation, train, dir));

            // Another training reference (another key) computes its own entry; a damaged entry is recomputed.
            using var other = new RealReference { Key = "other", DataSet = "test", Features = randn(700, 8), Statistics = FeatureStatistics.Of(randn(700, 8)), ImageShape = (1, 8, 8) };
            Assert.Equal(Memorization.MeanValidationDistance(validation, other), RealFeatureCache.ValidationNearestTrainDistance(validation, other, dir), 12);
            Assert.Equal(2, Directory.GetFiles(dir, "nn-*.json").Length);
            File.WriteAllText(path, "{ not json");
            Assert.Equal(direct, RealFeatureCache.ValidationNearestTrainDistance(validation, train, dir), 12);

            // The metrics with the cached denominator equal the ones that compute it.
            using var gen = randn(50, 8);
            using var genStats = FeatureStatistics.Of(gen);
            var computed = Memorization.Compute(gen, genStats, validation, train);
            var given = Memorization.Compute(gen, genStats, validation, train, validationNnDistance: first);
            Assert.Equal(computed.NnRatio, given.NnRatio, 12);
            Assert.Equal(computed.ValidationNnDistance, given.ValidationNnDistance, 12);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void NearestDistancesMatchABruteForceLoop()
    {
        manual_seed(1);
        using var q = randn(37, 5);
        using var r = randn(101, 5);
        using var d = Memorization.NearestDistances(q, r, chunk: 8, referenceChunk: 16);
        var qa = q.data<float>().ToArray();
        var ra = r.data<float>().ToArray();
        for (var i = 0; i < 37; i++)
        {
            var best = double.MaxValue;
            for (var j = 0; j < 101; j++)
                best = Math.Min(best, Enumerable.Range(0, 5).Sum(c => Math.Pow(qa[i * 5 + c] - ra[j * 5 + c], 2)));
            Assert.Equal(Math.Sqrt(best), d[i].item<double>(), 4);
        }
    }

    [Fact]
    public void CopyFractionCountsExactTokenSequences()
    {
        manual_seed(2);
        using var trainTokens = randint(0, 1024, [500, 64], dtype: ScalarType.Int32);
        var set = new TrainingSequences(trainTokens);
        Assert.Equal(500, set.Count);
        using var copies = trainTokens.narrow(0, 0, 50).to_type(ScalarType.Int64);             // another dtype, same ids
        Assert.Equal(1.0, set.CopyFraction(copies));
        using var fresh = randint(0, 1024, [50, 64], dtype: ScalarType.Int64);
        Assert.Equal(0.0, set.CopyFraction(fresh));
        using var oneOff = copies.clone();
        oneOff[0, 63] = (oneOff[0, 63] + 1) % 1024;                                                // one token differs
        using var mixed = cat([oneOff.narrow(0, 0, 1), copies.narrow(0, 1, 3)], 0);
        Assert.Equal(0.75, set.CopyFraction(mixed));
        Assert.Throws<ArgumentException>(() => set.CopyFraction(randint(0, 10, [3, 8], dtype: ScalarType.Int64)));
    }
}
