using Snce.Evaluation;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

public class TranslationQualityTests
{
    [Fact]
    public void SsimOfConstantImagesIsTheLuminanceTermInClosedForm()
    {
        // Constant images a and b: every σ is 0, so SSIM = (2ab + C1)/(a² + b² + C1) · C2/C2 at every window position.
        using var scope = NewDisposeScope();
        var (a, b) = (200, 40);
        var x = full(new long[] { 1, 3, 16, 16 }, (byte)a, dtype: ScalarType.Byte);
        var y = full(new long[] { 1, 3, 16, 16 }, (byte)b, dtype: ScalarType.Byte);
        var (fa, fb, c1) = (a / 255.0, b / 255.0, 0.01 * 0.01);
        var expected = (2 * fa * fb + c1) / (fa * fa + fb * fb + c1);
        Assert.Equal(expected, TranslationQuality.Ssim(x, y).item<float>(), 5);
        Assert.Equal(1.0, TranslationQuality.Ssim(x, x).item<float>(), 5);
    }

    [Fact]
    public void SsimMatchesABruteForceOverEveryWindow()
    {
        // Two random 2-channel 14×14 images and an independent double-loop SSIM (11×11 Gaussian, σ 1.5, valid positions).
        using var scope = NewDisposeScope();
        var g = new Generator(4);
        var x = randint(256, [2, 2, 14, 14], generator: g).to_type(ScalarType.Byte);
        var y = (x.to_type(ScalarType.Int32) + randint(-40, 40, [2, 2, 14, 14], generator: g)).clamp(0, 255).to_type(ScalarType.Byte);
        var got = TranslationQuality.Ssim(x, y).data<float>().ToArray();
        var w = new double[11, 11];
        double sum = 0;
        for (var i = 0; i < 11; i++) for (var j = 0; j < 11; j++) sum += w[i, j] = Math.Exp(-((i - 5) * (i - 5) + (j - 5) * (j - 5)) / (2 * 1.5 * 1.5));
        var (xs, ys) = (x.to_type(ScalarType.Float64).div(255).data<double>().ToArray(), y.to_type(ScalarType.Float64).div(255).data<double>().ToArray());
        var (c1, c2) = (1e-4, 9e-4);
        for (var n = 0; n < 2; n++)
        {
            double total = 0;
            var count = 0;
            for (var c = 0; c < 2; c++)
                for (var r = 0; r + 11 <= 14; r++)
                    for (var q = 0; q + 11 <= 14; q++)
                    {
                        double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
                        for (var i = 0; i < 11; i++)
                            for (var j = 0; j < 11; j++)
                            {
                                var k = ((n * 2 + c) * 14 + r + i) * 14 + q + j;
                                var wij = w[i, j] / sum;
                                mx += wij * xs[k]; my += wij * ys[k];
                                sxx += wij * xs[k] * xs[k]; syy += wij * ys[k] * ys[k]; sxy += wij * xs[k] * ys[k];
                            }
                        var (vx, vy, cxy) = (sxx - mx * mx, syy - my * my, sxy - mx * my);
                        total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
                        count++;
                    }
            Assert.Equal(total / count, got[n], 4);
        }
        Assert.True(got.All(s => s < 0.99), "noisy copies must score below 1");
    }

    [Fact]
    public void PsnrL1AndTokenAccuracyMatchHandComputedValues()
    {
        using var scope = NewDisposeScope();
        // A constant difference of 51 (= 0.2 in [0, 1]): MSE 0.04, PSNR = −10·log10(0.04) = 13.979 dB, L1 0.2.
        var x = full(new long[] { 2, 1, 8, 8 }, (byte)100, dtype: ScalarType.Byte);
        var y = full(new long[] { 2, 1, 8, 8 }, (byte)151, dtype: ScalarType.Byte);
        Assert.Equal(-10 * Math.Log10(0.04), TranslationQuality.Psnr(x, y)[0].item<float>(), 3);
        Assert.Equal(0.2, TranslationQuality.L1(x, y)[1].item<float>(), 5);
        var acc = TranslationQuality.TokenAccuracy(tensor(new long[,] { { 1, 2, 3, 4 }, { 0, 0, 0, 0 } }), tensor(new long[,] { { 1, 2, 0, 4 }, { 0, 9, 9, 9 } }));
        Assert.Equal([0.75f, 0.25f], acc.data<float>().ToArray());
        Assert.Contains("differ in shape", Assert.Throws<ArgumentException>(() => TranslationQuality.Ssim(x, y.narrow(0, 0, 1))).Message);
    }

    [Fact]
    public void TheNearestTrainingPairIsTheOneAgreeingAtTheMostSourcePositionsFirstOnTies()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(8);
        var pool = randint(4, [50, 6], generator: g);
        var queries = cat([randint(4, [20, 6], generator: g), pool.narrow(0, 7, 1), pool.narrow(0, 7, 1)], 0);
        pool[30] = pool[7];                                                   // a tie with row 7: the first wins
        var got = TranslationEvaluation.NearestBySourceTokens(queries, pool).data<long>().ToArray();
        var (q, p) = (queries.data<long>().ToArray(), pool.data<long>().ToArray());
        for (var i = 0; i < 22; i++)
        {
            int best = -1, bestAgree = -1;
            for (var j = 0; j < 50; j++)
            {
                var agree = Enumerable.Range(0, 6).Count(t => q[i * 6 + t] == p[j * 6 + t]);
                if (agree > bestAgree) (best, bestAgree) = (j, agree);
            }
            Assert.Equal(best, got[i]);
        }
        Assert.Equal(7, got[21]);
    }
}
