using Snce.Data;
using Snce.Losses;
using Snce.Models;
using Snce.Tests.Losses;
using Snce.Tests.Support;
using Snce.Training;
using static TorchSharp.torch;

namespace Snce.Tests.Training;

/// <summary>Shards tokenized with <c>--latents topk</c> (each position's k nearest codes, no latents) train latent-anchored top-k SNCE.</summary>
public class TopKShardTests
{
    const int StoredK = 8;

    /// <summary>
    /// The fixture shards with full latents, and the same shards as <c>--latents topk</c> stores them: for every position the
    /// <see cref="StoredK"/> codes nearest its latent (brute force: all distances, sorted) and their distances, no latents;
    /// optionally the code table (each code's nearest codes) beside them.
    /// </summary>
    static (TokenShards Full, TokenShards TopK) Pair(NearestCodes? codeTable = null)
    {
        var full = GeneratorFixtures.Shards(latents: true);
        var z = full.Latents!.to_type(ScalarType.Float32);                                     // [M, T, D], what the stored fp16 latents are
        var (m, t) = (z.shape[0], z.shape[1]);
        var (dist, ids) = Metric.L2.Distance(z.flatten(0, 1), full.Codebook).topk(StoredK, dim: 1, largest: false, sorted: true);
        var topk = new TokenShards
        {
            Info = full.Info with { Latents = "topk", NeighborsK = StoredK },
            Tokens = full.Tokens.alias(), Labels = full.Labels.alias(), Split = full.Split.alias(), Codebook = full.Codebook.alias(),
            LatentNeighborIds = ids.view(m, t, StoredK).to_type(ScalarType.Int32), LatentNeighborDist = dist.view(m, t, StoredK).contiguous(),
            CodeNeighborIds = codeTable?.Ids, CodeNeighborDist = codeTable?.Distances,
        };
        return (full, topk);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(StoredK)]
    public void TheLossOnStoredNeighboursIsDenseSnceRestrictedToThoseCodes(int k)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(4);
        var (n, numCodes, d) = (40, 16, 4);
        var codebook = randn([numCodes, d], generator: g);
        var z = randn([n, d], generator: g);
        var logits = randn([n, numCodes], generator: g);
        var tokens = Metric.L2.Distance(z, codebook).argmin(1);
        var (dist, ids) = Metric.L2.Distance(z, codebook).topk(StoredK, dim: 1, largest: false, sorted: true);
        const double tau = 0.7;
        using var loss = new SnceLoss(codebook, Metric.L2, tau, NeighborAnchor.Latent, topK: k);
        var stored = loss.Forward(logits, new TokenTargets(tokens) { LatentNeighbors = new NearestCodes(ids, dist) });

        // Reference: q over the whole codebook from the latents, kept on the first k stored ids and renormalized, in float64 loops.
        var q = BruteForce.Targets("l2", BruteForce.Matrix(z), BruteForce.Matrix(codebook), tau);
        var keep = BruteForce.Matrix(ids.narrow(1, 0, k));
        var restricted = new double[n, numCodes];
        for (var i = 0; i < n; i++)
        {
            var mass = Enumerable.Range(0, k).Sum(j => q[i, (int)keep[i, j]]);
            for (var j = 0; j < k; j++) restricted[i, (int)keep[i, j]] = q[i, (int)keep[i, j]] / mass;
        }
        var expected = BruteForce.SoftCrossEntropy(BruteForce.Matrix(logits), restricted).Average();
        BruteForce.AssertClose(expected, stored.Loss.item<float>(), 1e-5, "SNCE on stored neighbours");
        // The same loss as top-k SNCE from the latents themselves.
        var fromLatents = loss.Forward(logits, new TokenTargets(tokens, z));
        Assert.Equal(fromLatents.Loss.item<float>(), stored.Loss.item<float>(), 5);
        Assert.Equal(fromLatents.TargetEntropy!.item<float>(), stored.TargetEntropy!.item<float>(), 5);

        // Full-codebook targets cannot come from k neighbours; too few stored neighbours are refused.
        using var dense = new SnceLoss(codebook, Metric.L2, tau, NeighborAnchor.Latent);
        Assert.Contains("top-k targets only", Assert.Throws<ArgumentException>(() => dense.Forward(logits, new TokenTargets(tokens) { LatentNeighbors = new NearestCodes(ids, dist) })).Message);
        using var wide = new SnceLoss(codebook, Metric.L2, tau, NeighborAnchor.Latent, topK: StoredK + 1);
        Assert.Contains("[N, ≥k]", Assert.Throws<ArgumentException>(() => wide.Forward(logits, new TokenTargets(tokens) { LatentNeighbors = new NearestCodes(ids, dist) })).Message);
    }

    static List<double> TrainLosses(string tokens, string runDir, LossSpec spec, out PreparedRunInfo info)
    {
        var training = GeneratorFixtures.Training(steps: 4) with { LogEvery = 1, ValidateEvery = 4 };
        using var run = RunSetup.New(new NewRun(GeneratorKind.Autoregressive, tokens, "tiny", spec, training, runDir), CPU);
        using var trainer = new Trainer(run.Setup);
        Assert.Equal(StopReason.Completed, trainer.Run(new RunLimits()).Reason);
        var records = File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        var val = records.Last(e => e.GetProperty("split").GetString() == "val");
        info = new PreparedRunInfo(run.Setup.Loss, run.Notes.ToList(), val.GetProperty("target_entropy").GetDouble());
        return records.Where(e => e.GetProperty("split").GetString() == "train").Select(e => e.GetProperty("loss").GetDouble()).ToList();
    }

    /// <summary>What a finished run resolved and noted, and its validation mean H(q) (nats).</summary>
    sealed record PreparedRunInfo(ResolvedLoss Loss, List<string> Notes, double ValTargetEntropy);

    [Fact]
    public void TopKShardsTrainLatentAnchoredSnceLikeFullLatentShards()
    {
        using var dir = new TempDir();
        var (full, topk) = Pair();
        using (full) using (topk)
        {
            full.Save(dir["full"]);
            topk.Save(dir["topk"]);
        }
        // Auto anchor, τ calibrated to perplexity 3 on top-5 targets: from the full latents, and from the stored distances.
        var spec = new LossSpec { Kind = LossKind.Snce, Perplexity = 3, TopK = 5 };
        var fromLatents = TrainLosses(dir["full"], dir["run-full"], spec, out var a);
        var fromNeighbours = TrainLosses(dir["topk"], dir["run-topk"], spec, out var b);
        Assert.Equal(NeighborAnchor.Latent, b.Loss.Anchor);
        Assert.Equal(5, b.Loss.TopK);
        Assert.Equal(3, b.Loss.Calibration!.MeanPerplexity, 2);
        Assert.Equal(a.Loss.Tau!.Value, b.Loss.Tau!.Value, 4);                  // the same positions sampled, the same top-5 distances (fp16 latents either way)
        Assert.Equal(4, fromNeighbours.Count);
        for (var i = 0; i < fromLatents.Count; i++)
            Assert.True(Math.Abs(fromLatents[i] - fromNeighbours[i]) < 1e-4, $"step {i + 1}: latents {fromLatents[i]} vs stored neighbours {fromNeighbours[i]}");

        // Resume reads the stored neighbours again.
        using (var resumed = RunSetup.Resume(dir["run-topk"], CPU)) Assert.Equal(b.Loss, resumed.Setup.Loss);
    }

    [Fact]
    public void WhatTopKShardsCannotTrainFailsNamingTheFix()
    {
        using var dir = new TempDir();
        var (full, topk) = Pair();
        using (full) using (topk) topk.Save(dir["topk"]);
        string Fails(LossSpec spec) => Assert.Throws<ArgumentException>(() =>
            RunSetup.New(new NewRun(GeneratorKind.Autoregressive, dir["topk"], "tiny", spec, GeneratorFixtures.Training(steps: 1), dir["run"]), CPU)).Message;

        Assert.Contains($"give --top-k ≤ {StoredK}", Fails(new LossSpec { Kind = LossKind.Snce, Tau = 0.5, Anchor = NeighborAnchor.Latent }));
        Assert.Contains("--neighbors-k 12", Fails(new LossSpec { Kind = LossKind.Snce, Tau = 0.5, TopK = 12, Anchor = NeighborAnchor.Latent }));
        Assert.Contains("--loss-implementation reference",
            Fails(new LossSpec { Kind = LossKind.Snce, Tau = 0.5, TopK = 4, Anchor = NeighborAnchor.Latent, Implementation = LossImplementation.Fused }));
        Assert.Contains("only top-k SNCE reads", Fails(new LossSpec { Kind = LossKind.Stochastic, Anchor = NeighborAnchor.Latent }));
        Assert.False(File.Exists(Path.Combine(dir["run"], "metrics.jsonl")));

        // Auto anchor where the stored neighbours do not fit: code-anchored, as before, with a note saying how to use them.
        TrainLosses(dir["topk"], dir["run-auto"], new LossSpec { Kind = LossKind.Snce, Tau = 0.5 }, out var auto);
        Assert.Equal(NeighborAnchor.Code, auto.Loss.Anchor);
        Assert.Contains(auto.Notes, n => n.Contains($"--top-k ≤ {StoredK}") && n.Contains("code-anchored"));
    }

    [Fact]
    public void CodeAnchoredTopKReadsTheShardsCodeTable()
    {
        using var dir = new TempDir();
        var spec = new LossSpec { Kind = LossKind.Snce, Tau = 0.5, TopK = 4, Anchor = NeighborAnchor.Code };
        (List<double> Losses, double Entropy) Run(string name, Func<Tensor, NearestCodes?> table)
        {
            using var probe = GeneratorFixtures.Shards();
            var (full, topk) = Pair(table(probe.Codebook));
            using (full) using (topk) topk.Save(dir[name]);
            var losses = TrainLosses(dir[name], dir["run-" + name], spec, out var info);
            return (losses, info.ValTargetEntropy);
        }
        // Brute-force table (all distances, sorted) vs none (the loss builds it): the same losses.
        NearestCodes BruteTable(Tensor c, bool flatten)
        {
            var (dist, ids) = Metric.L2.Distance(c, c).topk(StoredK, dim: 1, largest: false, sorted: true);
            return new NearestCodes(ids.to_type(ScalarType.Int32), flatten ? zeros_like(dist) : dist.contiguous());
        }
        var built = Run("none", _ => null);
        var stored = Run("table", c => BruteTable(c, flatten: false));
        for (var i = 0; i < built.Losses.Count; i++) Assert.True(Math.Abs(built.Losses[i] - stored.Losses[i]) < 1e-5, $"step {i + 1}: {built.Losses[i]} vs {stored.Losses[i]}");
        Assert.Equal(built.Entropy, stored.Entropy, 5);
        // A table whose distances are all 0 gives uniform targets over its 4 codes, H(q) = ln 4: the table is what the loss reads.
        var flat = Run("flat", c => BruteTable(c, flatten: true));
        Assert.Equal(Math.Log(4), flat.Entropy, 5);
        Assert.True(built.Entropy < Math.Log(4) - 0.05, $"the built table's targets should be sharper than uniform, H = {built.Entropy}");
    }
}
