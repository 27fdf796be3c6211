using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Tests.Tokenizer;

public class QuantizationTests
{
    static VqTokenizer Model(string metric, QuantizerKind kind, int k = 64, int d = 8)
    {
        manual_seed(11);
        var model = new VqTokenizer(TokenizerPresets.Tiny with { ImageSize = 28, CodebookSize = k, CodeDim = d, Metric = metric, Quantizer = kind });
        using (no_grad()) model.Quantizer.Codebook.copy_(randn(k, d)); // spread codes: no near ties
        model.eval();
        return model;
    }

    /// <summary>argmin_k d(z, c_k) by explicit loops in double precision, d written out per metric.</summary>
    static long[] BruteForce(string metric, float[,] z, float[,] c)
    {
        var (n, k, d) = (z.GetLength(0), c.GetLength(0), z.GetLength(1));
        var result = new long[n];
        for (var i = 0; i < n; i++)
        {
            var best = double.PositiveInfinity;
            for (var j = 0; j < k; j++)
            {
                double dot = 0, zz = 0, cc = 0, sq = 0;
                for (var e = 0; e < d; e++)
                {
                    dot += (double)z[i, e] * c[j, e];
                    zz += (double)z[i, e] * z[i, e];
                    cc += (double)c[j, e] * c[j, e];
                    sq += ((double)z[i, e] - c[j, e]) * ((double)z[i, e] - c[j, e]);
                }
                var dist = metric switch { "l2" => sq, "dot" => -dot, "cosine" => -dot / Math.Sqrt(zz * cc), _ => throw new ArgumentException(metric) };
                if (dist < best) (best, result[i]) = (dist, j);
            }
        }
        return result;
    }

    static float[,] ToArray(Tensor t)
    {
        var (rows, cols) = ((int)t.shape[0], (int)t.shape[1]);
        var flat = t.detach().cpu().contiguous().data<float>().ToArray();
        var a = new float[rows, cols];
        for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) a[i, j] = flat[i * cols + j];
        return a;
    }

    [Theory]
    [InlineData("l2", QuantizerKind.Ibq)]
    [InlineData("dot", QuantizerKind.Ibq)]
    [InlineData("cosine", QuantizerKind.Ibq)]
    [InlineData("l2", QuantizerKind.Ema)]
    [InlineData("dot", QuantizerKind.Ema)]
    [InlineData("cosine", QuantizerKind.Ema)]
    public void TokenizeEqualsBruteForceArgmin(string metric, QuantizerKind kind)
    {
        using var scope = NewDisposeScope();
        using var model = Model(metric, kind);
        var images = rand(3, 1, 28, 28) * 2 - 1;
        var tokens = model.Tokenize(images);                                  // [3, 64]
        var latents = model.Latents(images).flatten(0, 1);                    // [192, 8]
        // The effective codes: the stored codebook, l2-normalized for EMA under dot (spherical k-means; checked below).
        var expected = BruteForce(metric, ToArray(latents), ToArray(model.Quantizer.Codes()));
        Assert.Equal(expected, tokens.flatten().data<long>().ToArray());
        Assert.Equal([3L, 64L], tokens.shape);
        // The forward pass (training path) uses the same rule.
        var forward = model.forward(images, null).Indices;
        Assert.True(forward.eq(tokens).all().item<bool>());
    }

    [Theory]
    [InlineData("l2")]
    [InlineData("cosine")]
    public void IndicesToCodesToIndicesRoundTrips(string metric)
    {
        using var scope = NewDisposeScope();
        using var model = Model(metric, QuantizerKind.Ibq);
        var ids = arange(64).view(4, 16);
        var codes = model.Quantizer.Lookup(ids);                              // [4, 16, 8]
        Assert.Equal([4L, 16L, 8L], codes.shape);
        var back = model.Quantizer.Indices(codes.flatten(0, 1)).view(4, 16);
        Assert.True(back.eq(ids).all().item<bool>());
    }

    [Fact]
    public void EmaUnderDotUsesUnitCodesAndStaysBoundedInTraining()
    {
        using var scope = NewDisposeScope();
        using var model = Model("dot", QuantizerKind.Ema);
        var stored = model.Quantizer.Codebook;
        var expected = stored / stored.norm(1, keepdim: true);
        Assert.True(model.Quantizer.Codes().allclose(expected, rtol: 1e-5, atol: 1e-6));
        // EMA updates from latents 100× longer than the codes: the effective codes stay unit vectors, the stored means grow.
        model.train();
        var q = (EmaQuantizer)model.Quantizer;
        for (var step = 1; step <= 5; step++)
        {
            var z = randn(256, q.CodeDim) * 100;
            var o = q.forward(z, new TrainingStep(step));
            var norms = o.Quantized.detach().norm(1);
            Assert.True((norms - 1).abs().max().item<float>() < 1e-4, $"step {step}: |quantized| in [{norms.min().item<float>()}, {norms.max().item<float>()}]");
        }
    }

    [Theory]
    [InlineData(QuantizerKind.Ibq)]
    [InlineData(QuantizerKind.Ema)]
    public void DotMetricCodesAreUnitVectorsAndAllRoundTrip(QuantizerKind kind)
    {
        // Under d = −z·c with codes of free length a code could lose its own vector to a longer code in a similar
        // direction (c_i·c_j > ‖c_i‖²) and was unreachable. With unit codes c_i·c_j < 1 = ‖c_i‖² for distinct codes:
        // every code is its own nearest code, whatever the stored lengths.
        using var scope = NewDisposeScope();
        using var model = Model("dot", kind, k: 64, d: 4);
        using (no_grad()) model.Quantizer.Codebook.mul_(rand(64, 1) * 10 + 0.1);
        var codes = model.Quantizer.Codes();
        Assert.True((codes.norm(1) - 1).abs().max().item<float>() < 1e-5);
        var back = model.Quantizer.Indices(model.Quantizer.Lookup(arange(64)));
        Assert.True(back.eq(arange(64)).all().item<bool>());
    }

    [Fact]
    public void DecodeTakesTokensAndGivesImagesOfTheInputSize()
    {
        using var scope = NewDisposeScope();
        using var model = Model("l2", QuantizerKind.Ema);
        var images = model.Decode(randint(0, 64, [2, 64]));
        Assert.Equal([2L, 1L, 28L, 28L], images.shape);
        Assert.Throws<ArgumentException>(() => model.Tokenize(zeros(2, 1, 32, 32)));
    }
}
