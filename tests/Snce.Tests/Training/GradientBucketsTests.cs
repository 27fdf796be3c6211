using Snce.Training;

namespace Snce.Tests.Training;

public class GradientBucketsTests
{
    const long A = FlatParameters.Alignment;

    /// <summary>Slot offsets of parameters with these element counts, laid out as FlatParameters does.</summary>
    static (List<long> Offsets, long Size) Layout(params long[] counts)
    {
        var offsets = new List<long>();
        long o = 0;
        foreach (var c in counts) { offsets.Add(o); o += (c + A - 1) / A * A; }
        return (offsets, o);
    }

    [Theory]
    [InlineData(4, 256)]
    [InlineData(4, 4096)]
    [InlineData(4, 1 << 20)]
    [InlineData(2, 300)]
    [InlineData(2, 1 << 16)]
    public void BucketsCoverEveryElementOnceWithinTheBudgetOnBoundaries(int elementSize, long maxBytes)
    {
        var (offsets, size) = Layout(1, 63, 64, 65, 1000, 5000, 7, 128 * 128, 3, 40_000);
        var buckets = GradientBuckets.Plan(offsets, size, maxBytes, elementSize);
        var cover = new int[size];
        foreach (var b in buckets) for (var i = b.Start; i < b.Start + b.Count; i++) cover[i]++;
        Assert.All(cover, c => Assert.Equal(1, c));
        Assert.Equal(buckets.OrderBy(b => b.Start), buckets);
        Assert.All(buckets, b => Assert.InRange(b.Count * elementSize, 1, maxBytes));
        var slotStarts = offsets.ToHashSet();
        // Every cut is a slot start, or an aligned cut inside a slot larger than the budget.
        foreach (var b in buckets.Skip(1))
        {
            Assert.Equal(0, b.Start % A);
            if (slotStarts.Contains(b.Start)) continue;
            var slot = offsets.Last(o => o < b.Start);
            var end = offsets.FirstOrDefault(o => o > slot, size);
            Assert.True((end - slot) * elementSize > maxBytes, $"cut at {b.Start} inside slot [{slot}, {end}) that fits the budget");
        }
        // Greedy: two neighbours that are whole slots could not have been one bucket.
        foreach (var (x, y) in buckets.Zip(buckets.Skip(1)))
            if (slotStarts.Contains(x.Start) && slotStarts.Contains(y.Start) && slotStarts.Contains(y.Start + y.Count) && y.Start != x.Start)
                Assert.True((x.Count + y.Count) * elementSize > maxBytes || !slotStarts.Contains(x.Start + x.Count));
    }

    [Fact]
    public void AHugeBudgetIsOneBucket()
    {
        var (offsets, size) = Layout(10, 20, 30);
        Assert.Equal([new GradientBuckets.Bucket(0, size)], GradientBuckets.Plan(offsets, size, 1L << 30, 4));
    }

    [Fact]
    public void HandComputedExample()
    {
        // Slots of 64, 64, 320, 64 elements; budget 128 fp32 elements: [0,128) [128,256) [256,384) [384,448) [448,512).
        var b = GradientBuckets.Plan([0, 64, 128, 448], 512, 128 * 4, 4);
        Assert.Equal([new(0, 128), new(128, 128), new(256, 128), new(384, 64), new(448, 64)], b);
    }

    [Fact]
    public void ABudgetBelowOneAlignedBlockIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientBuckets.Plan([0], 64, 63 * 4, 4));
}
