using System.Text;

namespace Snce.Data;

/// <summary>
/// The train/validation split: a pure function of a per-image key, a seed and a fraction, so it can be
/// recomputed anywhere (also outside Snce) and does not depend on the order or number of other images.
/// </summary>
/// <remarks>
/// Rule: <c>u = SplitMix64(Fnv1a64(utf8(key)) ^ SplitMix64(seed)) / 2^64</c>; the image is held out for
/// validation when <c>u &lt; fraction</c>. Images sharing a key share a split: emoji are keyed by their
/// base code point, so skin-tone variants stay together and the same emoji is held out for every vendor;
/// image folders are keyed by relative path, so adding images never moves the others.
/// If the rule leaves a split empty while both could be filled, the key closest to the threshold moves
/// over, so a small folder still gets a validation image.
/// </remarks>
public static class DataSplit
{
    /// <summary>Default validation share (10%).</summary>
    public const double DefaultValidationFraction = 0.1;
    /// <summary>Default split seed.</summary>
    public const int DefaultSeed = 0;

    /// <summary>Key rule: "CLASS/ORDINAL", the image's position among the images of its class in stored order.</summary>
    public const string ClassOrdinalKey = "class-ordinal";

    /// <summary>Key rule: the value of a per-image attribute (emoji: base_unified; image folders: file).</summary>
    public static string AttributeKey(string attribute) => "attribute:" + attribute;

    /// <summary>The split key of every image under a key rule (stored with the cache, so a split can be recomputed).</summary>
    public static string[] Keys(string rule, IReadOnlyList<long> labels, IReadOnlyDictionary<string, string[]> attributes)
    {
        if (rule == ClassOrdinalKey)
        {
            var seen = new Dictionary<long, int>();
            return [.. labels.Select(l => { var k = seen.GetValueOrDefault(l); seen[l] = k + 1; return $"{l}/{k}"; })];
        }
        if (rule.StartsWith("attribute:", StringComparison.Ordinal) && attributes.TryGetValue(rule["attribute:".Length..], out var values))
            return values;
        throw new InvalidDataException($"unknown split key rule '{rule}' (or its attribute is missing); use {ClassOrdinalKey} or attribute:NAME");
    }

    /// <summary>Split (0 = train, 1 = validation) for each key.</summary>
    public static byte[] Assign(IReadOnlyList<string> keys, double validationFraction, int seed)
    {
        if (!(validationFraction is >= 0 and < 1))
            throw new ArgumentException($"validation fraction must be in [0, 1), got {validationFraction}");
        var u = keys.Select(k => Uniform(k, seed)).ToArray();
        var split = u.Select(x => x < validationFraction ? ImageDataset.ValidationSplit : ImageDataset.TrainSplit).ToArray();
        if (validationFraction > 0 && keys.Distinct().Count() >= 2)
        {
            if (!split.Contains(ImageDataset.ValidationSplit)) MoveKey(keys, u, split, ImageDataset.ValidationSplit, pickSmallest: true);
            else if (!split.Contains(ImageDataset.TrainSplit)) MoveKey(keys, u, split, ImageDataset.TrainSplit, pickSmallest: false);
        }
        return split;
    }

    /// <summary>The key's position in [0, 1) for this seed.</summary>
    public static double Uniform(string key, int seed)
    {
        var h = SplitMix64(Fnv1a64(Encoding.UTF8.GetBytes(key)) ^ SplitMix64((ulong)(uint)seed));
        return (h >> 11) * (1.0 / (1UL << 53));
    }

    static void MoveKey(IReadOnlyList<string> keys, double[] u, byte[] split, byte to, bool pickSmallest)
    {
        var best = 0;
        for (var i = 1; i < u.Length; i++)
            if (pickSmallest ? u[i] < u[best] : u[i] > u[best]) best = i;
        for (var i = 0; i < keys.Count; i++)
            if (keys[i] == keys[best]) split[i] = to;
    }

    static ulong Fnv1a64(ReadOnlySpan<byte> bytes)
    {
        var h = 14695981039346656037UL;
        foreach (var b in bytes) h = (h ^ b) * 1099511628211UL;
        return h;
    }

    // Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (2014): the SplitMix64 finalizer.
    static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
