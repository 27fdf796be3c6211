using Snce.Data;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// How close generated images are to the training set, next to FD (which only compares distributions and can reward
/// copies of training images).
/// </summary>
/// <param name="CopyFraction">share of generated token sequences identical to a training sequence; null when the
/// images came without tokens (<c>snce eval --images</c>) or the training shards were not found.</param>
/// <param name="TrainSequences">distinct training token sequences compared against (null with <paramref name="CopyFraction"/>).</param>
/// <param name="NnRatio">mean distance of a generated image to its nearest training image divided by the same for a real
/// validation image, in ResNet-18 feature space: ≈ 1 for images as novel as held-out ones, → 0 for copies.</param>
/// <param name="GeneratedNnDistance">mean generated → nearest training distance (the numerator).</param>
/// <param name="ValidationNnDistance">mean validation → nearest training distance (the denominator).</param>
/// <param name="FdTrain">FD-ResNet18 of the generated images against the training split.</param>
/// <param name="TrainCount">training images behind <paramref name="FdTrain"/> and the nearest-neighbour distances.</param>
public sealed record MemorizationResult(double? CopyFraction, int? TrainSequences, double NnRatio, double GeneratedNnDistance,
    double ValidationNnDistance, double FdTrain, int TrainCount);

/// <summary>The training split's token sequences as a set, to count generated sequences that reproduce one exactly.</summary>
public sealed class TrainingSequences
{
    readonly HashSet<Sequence> set = [];

    /// <summary>The set of rows of <paramref name="tokens"/> (integer [N, T], any integer dtype).</summary>
    public TrainingSequences(Tensor tokens)
    {
        if (tokens.dim() != 2) throw new ArgumentException($"token sequences must be [N, T]; got [{string.Join(", ", tokens.shape)}]");
        Length = (int)tokens.shape[1];
        foreach (var row in Rows(tokens)) set.Add(row);
    }

    /// <summary>Tokens per sequence T.</summary>
    public int Length { get; }

    /// <summary>Distinct training sequences.</summary>
    public int Count => set.Count;

    /// <summary>
    /// Reads the training split of a token shard folder from <c>snce tokenize</c> (tokens.npy and split.npy only: the
    /// latents, which can be large, are not loaded).
    /// </summary>
    public static TrainingSequences FromShards(string dir)
    {
        foreach (var f in new[] { "tokens.npy", "split.npy" })
            if (!File.Exists(Path.Combine(dir, f))) throw new FileNotFoundException($"no {f} in token shard folder '{dir}'; point to the shards the generator was trained on", Path.Combine(dir, f));
        using var scope = NewDisposeScope();
        var tokens = Npy.Load(Path.Combine(dir, "tokens.npy"));
        var split = Npy.Load(Path.Combine(dir, "split.npy"));
        var train = nonzero(split.to_type(ScalarType.Int64) == TokenShards.TrainSplit).squeeze(1);
        return new TrainingSequences(tokens.reshape(tokens.shape[0], -1).index_select(0, train));
    }

    /// <summary>Share of rows of <paramref name="generated"/> (integer [M, T]) that are training sequences.</summary>
    public double CopyFraction(Tensor generated)
    {
        if (generated.dim() != 2 || generated.shape[1] != Length)
            throw new ArgumentException($"generated sequences must be [M, {Length}]; got [{string.Join(", ", generated.shape)}]");
        if (generated.shape[0] == 0) throw new ArgumentException("no generated sequences");
        return (double)Rows(generated).Count(set.Contains) / generated.shape[0];
    }

    static IEnumerable<Sequence> Rows(Tensor tokens)
    {
        using var cpu = tokens.to_type(ScalarType.Int64).cpu().contiguous();
        var values = cpu.data<long>().ToArray();
        var t = (int)tokens.shape[1];
        for (var i = 0; i < tokens.shape[0]; i++) yield return new Sequence(values.AsSpan(i * t, t).ToArray());
    }

    /// <summary>A token row compared by value (its hash computed once).</summary>
    readonly struct Sequence : IEquatable<Sequence>
    {
        readonly long[] ids;
        readonly int hash;

        public Sequence(long[] ids)
        {
            this.ids = ids;
            var h = new HashCode();
            h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()));
            hash = h.ToHashCode();
        }

        public bool Equals(Sequence other) => hash == other.hash && ids.AsSpan().SequenceEqual(other.ids);
        public override bool Equals(object? obj) => obj is Sequence s && Equals(s);
        public override int GetHashCode() => hash;
    }
}

/// <summary>The memorization metrics of <see cref="MemorizationResult"/> from features and tokens.</summary>
public static class Memorization
{
    /// <summary>Euclidean distance of each row of <paramref name="queries"/> [M, D] to its nearest row of <paramref name="reference"/> [N, D]: [M] float64.</summary>
    /// <remarks>Row blocks of <paramref name="chunk"/> queries × <paramref name="referenceChunk"/> references in float32 (‖a‖² + ‖b‖² − 2a·b, clamped at 0).</remarks>
    public static Tensor NearestDistances(Tensor queries, Tensor reference, int chunk = 1024, int referenceChunk = 16384)
    {
        if (queries.dim() != 2 || reference.dim() != 2 || queries.shape[1] != reference.shape[1])
            throw new ArgumentException($"features must be [M, D] and [N, D] with the same D; got [{string.Join(", ", queries.shape)}] and [{string.Join(", ", reference.shape)}]");
        if (reference.shape[0] == 0) throw new ArgumentException("the reference set is empty");
        using var scope = NewDisposeScope();
        var q = queries.to_type(ScalarType.Float32);
        var r = reference.to_type(ScalarType.Float32);
        var parts = new List<Tensor>();
        for (long i = 0; i < q.shape[0]; i += chunk)
        {
            var qi = q.narrow(0, i, Math.Min(chunk, q.shape[0] - i));
            var qn = qi.square().sum(1, keepdim: true);
            Tensor? best = null;
            for (long j = 0; j < r.shape[0]; j += referenceChunk)
            {
                using var block = NewDisposeScope();
                var rj = r.narrow(0, j, Math.Min(referenceChunk, r.shape[0] - j));
                var d = (qn + rj.square().sum(1).unsqueeze(0) - 2 * qi.matmul(rj.t())).clamp_min(0).min(1).values;
                best = (best is null ? d : minimum(best, d)).MoveToOuterDisposeScope();
            }
            parts.Add(best!);
        }
        return cat(parts, 0).to_type(ScalarType.Float64).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The metrics for generated features [M, D] (and, when given, their token sequences [M, T] with the training set's),
    /// against the validation and training references.
    /// </summary>
    /// <remarks><paramref name="validationNnDistance"/>: the mean validation → nearest training distance when known (it depends
    /// on the two references only: <see cref="RealFeatureCache.ValidationNearestTrainDistance"/> caches it); null computes it
    /// here. <paramref name="device"/>: where the distances are computed (the feature extractor's device; default the CPU).</remarks>
    public static MemorizationResult Compute(Tensor generatedFeatures, FeatureStatistics generatedStatistics, RealReference validation, RealReference train,
        Tensor? generatedTokens = null, TrainingSequences? trainSequences = null, double? validationNnDistance = null, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var trainFeatures = train.Features.to(device ?? CPU);
        var gen = NearestDistances(generatedFeatures.to(device ?? CPU), trainFeatures).mean().item<double>();
        var val = validationNnDistance ?? MeanDistanceTo(validation, trainFeatures);
        if (!(val > 0)) throw new InvalidDataException("every validation image has a copy in the training split (nearest distance 0); the nearest-neighbour ratio needs disjoint splits");
        double? copies = generatedTokens is not null && trainSequences is not null ? trainSequences.CopyFraction(generatedTokens) : null;
        var fdTrain = FrechetDistance.Compute(train.Statistics, generatedStatistics);
        return new MemorizationResult(copies, copies is null ? null : trainSequences!.Count, gen / val, gen, val, fdTrain, train.Count);
    }

    /// <summary>Mean distance of a validation image to its nearest training image (the nearest-neighbour ratio's denominator).</summary>
    public static double MeanValidationDistance(RealReference validation, RealReference train, Device? device = null)
    {
        using var trainFeatures = train.Features.to(device ?? CPU);
        return MeanDistanceTo(validation, trainFeatures);
    }

    static double MeanDistanceTo(RealReference validation, Tensor trainFeatures)
    {
        using var q = validation.Features.to(trainFeatures.device);
        using var d = NearestDistances(q, trainFeatures);
        return d.mean().item<double>();
    }
}
