using Snce.Evaluation.Reports;

namespace Snce.Tests.Evaluation;

public class LinearFitTests
{
    [Fact]
    public void AnExactLineHasItsSlopeAndNoError()
    {
        var fit = LinearFit.Of([(1.0, 1.0), (2.0, -1.0), (3.0, -3.0), (5.0, -7.0), (8.0, -13.0)])!; // y = 3 − 2x
        Assert.Equal(-2, fit.Slope, 12);
        Assert.Equal(3, fit.Intercept, 12);
        Assert.Equal(0, fit.SlopeStdError, 12);
        Assert.Equal((-2.0, -2.0), (Math.Round(fit.SlopeInterval95.Lower, 12), Math.Round(fit.SlopeInterval95.Upper, 12)));
    }

    [Fact]
    public void FourPointsByHand()
    {
        // x 0..3, y 1, 3, 2, 5: x̄ 1.5, ȳ 2.75, Sxx 5, Sxy 5.5 → slope 1.1, intercept 1.1; residuals −0.1, 0.8, −1.3, 0.6,
        // SSE 2.7, s² 1.35, SE √(1.35 / 5) = √0.27; 95 %: ± t(0.975, 2)·SE with t(0.975, 2) = 0.95 / √(2·0.975·0.025).
        var fit = LinearFit.Of([(0.0, 1.0), (1.0, 3.0), (2.0, 2.0), (3.0, 5.0)])!;
        Assert.Equal((1.1, 1.1, 4, 2), (Math.Round(fit.Slope, 12), Math.Round(fit.Intercept, 12), fit.Count, fit.Dof));
        Assert.Equal(Math.Sqrt(0.27), fit.SlopeStdError, 12);
        var half = 0.95 / Math.Sqrt(2 * 0.975 * 0.025) * Math.Sqrt(0.27);
        Assert.Equal(1.1 - half, fit.SlopeInterval95.Lower, 8);
        Assert.Equal(1.1 + half, fit.SlopeInterval95.Upper, 8);
    }

    [Fact]
    public void TooFewPointsOrOneXGiveNoFit()
    {
        Assert.Null(LinearFit.Of([(0.0, 1.0), (1.0, 3.0)]));
        Assert.Null(LinearFit.Of([(4.0, 1.0), (4.0, 3.0), (4.0, 2.0)]));
    }
}
