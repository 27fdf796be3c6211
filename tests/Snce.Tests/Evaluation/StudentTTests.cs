using Snce.Evaluation.Reports;

namespace Snce.Tests.Evaluation;

public class StudentTTests
{
    [Theory]
    [InlineData(0.6)]
    [InlineData(0.9)]
    [InlineData(0.975)]
    [InlineData(0.995)]
    public void QuantileMatchesTheClosedFormsForOneAndTwoDegreesOfFreedom(double p)
    {
        // ν = 1 (Cauchy): tan(π(p − ½)); ν = 2: (2p − 1) / √(2p(1 − p)).
        Assert.Equal(Math.Tan(Math.PI * (p - 0.5)), StudentT.Quantile(p, 1), 9);
        Assert.Equal((2 * p - 1) / Math.Sqrt(2 * p * (1 - p)), StudentT.Quantile(p, 2), 9);
    }

    [Theory]
    [InlineData(0.975, 2, 4.3027)]
    [InlineData(0.975, 4, 2.7764)]
    [InlineData(0.975, 10, 2.2281)]
    [InlineData(0.975, 30, 2.0423)]
    [InlineData(0.995, 5, 4.0321)]
    [InlineData(0.95, 20, 1.7247)]
    [InlineData(0.975, 1e5, 1.9600)]                                           // → the normal's 1.95996
    public void QuantileMatchesTheTable(double p, double dof, double table)
    {
        Assert.Equal(table, StudentT.Quantile(p, dof), 4);
        Assert.Equal(-table, StudentT.Quantile(1 - p, dof), 4);
    }

    [Theory]
    [InlineData(-3.0)]
    [InlineData(0.0)]
    [InlineData(0.7)]
    [InlineData(12.0)]
    public void CdfMatchesTheCauchyAndInvertsTheQuantile(double t)
    {
        Assert.Equal(0.5 + Math.Atan(t) / Math.PI, StudentT.Cdf(t, 1), 12);
        Assert.Equal(1, StudentT.Cdf(t, 7) + StudentT.Cdf(-t, 7), 12);
        var p = StudentT.Cdf(t, 3.5);
        Assert.Equal(t, StudentT.Quantile(p, 3.5), 7);
    }

    [Fact]
    public void RefusesImpossibleArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => StudentT.Quantile(1, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => StudentT.Quantile(0.5, 0));
    }
}
