namespace Snce.Training;

/// <summary>
/// Splits the flat gradient buffer into contiguous buckets of at most a byte budget each, for one all-reduce per
/// bucket (smaller collectives can start while later ones are queued, and stay under NCCL's sweet spot). A bucket
/// ends at a parameter's slot boundary where it can; a slot larger than the budget is cut at multiples of
/// <see cref="FlatParameters.Alignment"/>. The buckets cover [0, size) in order, each element exactly once.
/// </summary>
public static class GradientBuckets
{
    /// <summary>One bucket: elements [Start, Start + Count) of the flat buffer.</summary>
    public sealed record Bucket(long Start, long Count);

    /// <summary>Buckets over <paramref name="flat"/>'s gradient buffer of ≤ <paramref name="maxBytes"/> bytes each.</summary>
    public static IReadOnlyList<Bucket> Plan(FlatParameters flat, long maxBytes) =>
        Plan(flat.Slots.Select(s => s.Offset).ToList(), flat.Size, maxBytes, Snce.IO.ElementSize.Of(flat.Grads.dtype));

    /// <summary>
    /// Buckets over a buffer of <paramref name="size"/> elements whose slots start at <paramref name="slotOffsets"/>
    /// (ascending, multiples of <see cref="FlatParameters.Alignment"/>, the first 0).
    /// </summary>
    public static IReadOnlyList<Bucket> Plan(IReadOnlyList<long> slotOffsets, long size, long maxBytes, int elementSize)
    {
        const long align = FlatParameters.Alignment;
        if (elementSize <= 0) throw new ArgumentOutOfRangeException(nameof(elementSize), $"element size must be positive (got {elementSize})");
        var maxElems = maxBytes / elementSize / align * align;
        if (maxElems < align) throw new ArgumentOutOfRangeException(nameof(maxBytes), $"a bucket must hold at least {align} elements ({align * elementSize} bytes; got {maxBytes})");
        if (size % align != 0 || slotOffsets.Count == 0 || slotOffsets[0] != 0
            || slotOffsets.Zip(slotOffsets.Skip(1)).Any(p => p.Second <= p.First) || slotOffsets.Any(o => o % align != 0 || o >= size))
            throw new ArgumentException($"slot offsets must ascend from 0 in multiples of {align} below the size {size}");
        var buckets = new List<Bucket>();
        long start = 0;
        for (var i = 0; i < slotOffsets.Count; i++)
        {
            var (a, b) = (slotOffsets[i], i + 1 < slotOffsets.Count ? slotOffsets[i + 1] : size);
            if (b - a > maxElems)
            {
                if (a > start) buckets.Add(new Bucket(start, a - start));
                for (var c = a; c < b; c += maxElems) buckets.Add(new Bucket(c, Math.Min(maxElems, b - c)));
                start = b;
            }
            else if (b - start > maxElems)
            {
                buckets.Add(new Bucket(start, a - start));
                start = a;
            }
        }
        if (size > start) buckets.Add(new Bucket(start, size - start));
        return buckets;
    }
}
