namespace Snce.Evaluation.Reports;

/// <summary>
/// An ordinary least-squares line y = Intercept + Slope·x over <see cref="Count"/> points, with the slope's standard error
/// √(s² / Sxx), s² = SSE / (n − 2), and its two-sided 95 % interval Slope ± t(0.975, n − 2)·SE.
/// </summary>
public sealed record LinearFit(double Slope, double Intercept, int Count, double SlopeStdError)
{
    /// <summary>The least points <see cref="Of"/> fits: two give a line but no residual degree of freedom, so no error.</summary>
    public const int MinPoints = 3;

    /// <summary>Degrees of freedom of the residuals, n − 2.</summary>
    public int Dof => Count - 2;

    /// <summary>The two-sided 95 % interval of the slope (t distribution with n − 2 degrees of freedom).</summary>
    public (double Lower, double Upper) SlopeInterval95
    {
        get
        {
            var half = StudentT.Quantile(0.975, Dof) * SlopeStdError;
            return (Slope - half, Slope + half);
        }
    }

    /// <summary>
    /// The fit of <paramref name="points"/>, or null with fewer than <see cref="MinPoints"/> points or when every x is the
    /// same (no slope to fit).
    /// </summary>
    public static LinearFit? Of(IReadOnlyList<(double X, double Y)> points)
    {
        if (points.Count < MinPoints) return null;
        var mx = points.Average(p => p.X);
        var my = points.Average(p => p.Y);
        var sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        if (!(sxx > 0)) return null;
        var slope = points.Sum(p => (p.X - mx) * (p.Y - my)) / sxx;
        var intercept = my - slope * mx;
        var sse = points.Sum(p => Math.Pow(p.Y - intercept - slope * p.X, 2));
        return new LinearFit(slope, intercept, points.Count, Math.Sqrt(sse / (points.Count - 2) / sxx));
    }
}
