using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>Data-parallel shards: the ranks' slices of each global batch, concatenated in rank order, are the 1-process batch.</summary>
public class BatchOrderShardTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void RanksSplitTheOneProcessGlobalBatches(int world)
    {
        const long count = 103;
        const int perRank = 4, seed = 11;
        using var single = new BatchOrder(count, perRank * world, seed, CPU);
        var ranks = Enumerable.Range(0, world).Select(r => new BatchOrder(count, perRank, seed, CPU, r, world)).ToList();
        try
        {
            Assert.All(ranks, r => Assert.Equal(single.BatchesPerEpoch, r.BatchesPerEpoch));
            for (var epoch = 0; epoch < 2; epoch++)
            {
                var seen = new HashSet<long>();
                for (var step = 0; step < single.BatchesPerEpoch; step++)
                {
                    using var scope = NewDisposeScope();
                    var global = single.Next().data<long>().ToArray();
                    var shards = ranks.SelectMany(r => r.Next().data<long>().ToArray()).ToArray();
                    Assert.Equal(global, shards);
                    Assert.All(shards, i => Assert.True(seen.Add(i), $"example {i} read twice in epoch {epoch}"));
                    Assert.All(shards, i => Assert.InRange(i, 0, count - 1));
                }
                Assert.Equal(single.BatchesPerEpoch * perRank * world, seen.Count);
                Assert.All(ranks, r => Assert.Equal(epoch + 1, r.Epoch));
            }
        }
        finally { foreach (var r in ranks) r.Dispose(); }
    }
}
