namespace Snce.Evaluation.Reports;

/// <summary>
/// Student's t distribution: its CDF through the regularized incomplete beta function and its quantile by bisection on
/// that CDF, for the report's confidence intervals (Numerical Recipes, 3rd ed., §6.4 and §6.14).
/// </summary>
public static class StudentT
{
    /// <summary>P(T ≤ <paramref name="t"/>) for <paramref name="dof"/> degrees of freedom (any positive real).</summary>
    public static double Cdf(double t, double dof)
    {
        if (!(dof > 0)) throw new ArgumentOutOfRangeException(nameof(dof), dof, "degrees of freedom must be positive");
        // P(|T| > |t|) = I_{ν/(ν+t²)}(ν/2, 1/2).
        var tail = 0.5 * RegularizedBeta(dof / (dof + t * t), dof / 2, 0.5);
        return t >= 0 ? 1 - tail : tail;
    }

    /// <summary>The <paramref name="p"/>-quantile (0 &lt; p &lt; 1) of the t distribution with <paramref name="dof"/> degrees of freedom.</summary>
    public static double Quantile(double p, double dof)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "a probability strictly between 0 and 1");
        if (!(dof > 0)) throw new ArgumentOutOfRangeException(nameof(dof), dof, "degrees of freedom must be positive");
        if (p < 0.5) return -Quantile(1 - p, dof);
        double lo = 0, hi = 1;
        while (Cdf(hi, dof) < p) hi *= 2;                        // t(0.9999, 1) ≈ 3183: a dozen doublings at most for usual p
        for (var i = 0; i < 200 && hi - lo > 1e-13 * Math.Max(1, hi); i++)
        {
            var mid = 0.5 * (lo + hi);
            if (Cdf(mid, dof) < p) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }

    /// <summary>I_x(a, b), by the continued fraction of NR §6.4 (on the side of x where it converges fast).</summary>
    static double RegularizedBeta(double x, double a, double b)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        var front = Math.Exp(LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x));
        return x < (a + 1) / (a + b + 2) ? front * BetaFraction(x, a, b) / a : 1 - front * BetaFraction(1 - x, b, a) / b;
    }

    static double BetaFraction(double x, double a, double b)
    {
        const double tiny = 1e-300, eps = 1e-16;
        double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        var h = d;
        for (var m = 1; m <= 10_000; m++)
        {
            var m2 = 2 * m;
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d; h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            var del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < eps) return h;
        }
        throw new ArithmeticException($"incomplete beta continued fraction did not converge (x = {x}, a = {a}, b = {b})");
    }

    /// <summary>ln Γ(x) for x &gt; 0: Lanczos (g = 7, 9 terms), with the reflection formula below 0.5.</summary>
    static double LogGamma(double x)
    {
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        x -= 1;
        var sum = g[0];
        for (var i = 1; i < g.Length; i++) sum += g[i] / (x + i);
        var t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
