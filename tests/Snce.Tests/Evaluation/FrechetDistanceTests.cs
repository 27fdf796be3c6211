using Snce.Evaluation;
using static TorchSharp.torch;

namespace Snce.Tests.Evaluation;

public class FrechetDistanceTests
{
    static FeatureStatistics Stats(double[] mean, Tensor cov) => new(tensor(mean, ScalarType.Float64), cov, 1000);

    static Tensor Diag(params double[] v) => diag(tensor(v, ScalarType.Float64));

    /// <summary>A 2-D rotation by <paramref name="radians"/>.</summary>
    static Tensor Rotation(double radians) =>
        tensor(new[] { Math.Cos(radians), -Math.Sin(radians), Math.Sin(radians), Math.Cos(radians) }, [2, 2], ScalarType.Float64);

    [Fact]
    public void ASetAgainstItselfIsZero()
    {
        var g = new Generator(1);
        using var x = randn([3000, 32], generator: g) * 2 + 1;
        Assert.InRange(FrechetDistance.Compute(x, x), -1e-8, 1e-8);
    }

    [Fact]
    public void DiagonalGaussiansMatchTheClosedForm()
    {
        double[] m1 = [0.5, -1, 2, 0], m2 = [1.5, 1, 2, -3];
        double[] v1 = [1, 4, 0.25, 9], v2 = [2, 1, 0.25, 16];
        // Diagonal covariances commute, so (Σ1 Σ2)^½ = diag(√(v1 v2)).
        var expected = m1.Zip(m2, (a, b) => (a - b) * (a - b)).Sum() + v1.Zip(v2, (a, b) => a + b - 2 * Math.Sqrt(a * b)).Sum();
        using var a = Stats(m1, Diag(v1));
        using var b = Stats(m2, Diag(v2));
        Assert.Equal(expected, FrechetDistance.Compute(a, b), 10);
        Assert.Equal(expected, FrechetDistance.Compute(b, a), 10);
    }

    [Fact]
    public void NonCommutingRotatedCovariancesMatchTheTwoByTwoClosedForm()
    {
        // Σ1 and R Σ2 Rᵀ do not commute. For a 2×2 matrix M with non-negative eigenvalues,
        // Tr(M^½) = √(Tr M + 2 √det M) — an independent formula for Tr((Σ1 Σ2)^½).
        using var s1 = Diag(4, 1);
        using var r = Rotation(0.7);
        using var s2 = r.matmul(Diag(9, 0.5)).matmul(r.t());
        using var m = s1.matmul(s2);
        var traceSqrt = Math.Sqrt(m.trace().item<double>() + 2 * Math.Sqrt(linalg.det(m).item<double>()));
        double[] mu1 = [1, 2], mu2 = [-1, 0.5];
        var expected = 2 * 2 + 1.5 * 1.5 + s1.trace().item<double>() + s2.trace().item<double>() - 2 * traceSqrt;
        using var a = Stats(mu1, s1);
        using var b = Stats(mu2, s2);
        Assert.Equal(expected, FrechetDistance.Compute(a, b), 9);
    }

    [Fact]
    public void SamplesOfTwoGaussiansApproachTheirClosedForm()
    {
        // x ~ N(μ1, diag(v1)), y ~ N(μ2, diag(v2)); the sample estimate converges to the closed form.
        var g = new Generator(3);
        double[] v1 = [1, 4, 0.5], v2 = [3, 1, 0.5];
        using var x = randn([40000, 3], ScalarType.Float64, generator: g) * tensor(v1.Select(Math.Sqrt).ToArray()) + tensor(new[] { 0.0, 1, 0 });
        using var y = randn([40000, 3], ScalarType.Float64, generator: g) * tensor(v2.Select(Math.Sqrt).ToArray()) + tensor(new[] { 2.0, 1, 0 });
        var expected = 4 + v1.Zip(v2, (a, b) => a + b - 2 * Math.Sqrt(a * b)).Sum();
        Assert.Equal(expected, FrechetDistance.Compute(x, y), 1); // ±0.05 at 40k samples
    }

    [Fact]
    public void SingularCovariancesStayReal()
    {
        // Fewer samples than dimensions: rank-deficient Σ; clamped eigenvalues keep the result finite.
        var g = new Generator(5);
        using var x = randn([20, 64], generator: g);
        using var y = randn([20, 64], generator: g) + 0.5;
        var fd = FrechetDistance.Compute(x, y);
        Assert.True(double.IsFinite(fd) && fd > 0, $"fd = {fd}");
    }

    [Fact]
    public void SymmetricSqrtSquaresBack()
    {
        var g = new Generator(2);
        using var a = randn([6, 6], ScalarType.Float64, generator: g);
        using var spd = a.matmul(a.t());
        using var root = FrechetDistance.SymmetricSqrt(spd);
        Assert.True(root.matmul(root).allclose(spd, rtol: 1e-9, atol: 1e-9));
    }

    [Fact]
    public void BadInputsFailClearly()
    {
        using var one = zeros(1, 4);
        var e = Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(one, one));
        Assert.Contains("at least 2", e.Message);
        using var a = zeros(5, 4);
        using var b = zeros(5, 3);
        Assert.Contains("dimensions differ", Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(a, b)).Message);
    }

    [Fact]
    public void ComputingLeavesNoTensorsBehind()
    {
        using var x = randn(50, 8);
        using var y = randn(50, 8);
        Support.LeakCheck.AssertNoLeak(() => FrechetDistance.Compute(x, y), what: "FrechetDistance.Compute");
    }
}
