using System.Globalization;

namespace Snce.Cli;

/// <summary>The one duration syntax of every verb: 90s, 5m, 1h, 1h30m, or plain seconds (90, 2.5).</summary>
public static class Durations
{
    /// <summary>Help text for an option that takes a duration.</summary>
    public const string Syntax = "90s, 5m, 1h, 1h30m or plain seconds";

    /// <summary>Parses <paramref name="text"/> (null or blank → null); throws naming <paramref name="option"/> and the syntax.</summary>
    public static TimeSpan? Parse(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var t = text.Trim().ToLowerInvariant();
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var secs))
            return secs > 0 && double.IsFinite(secs) ? TimeSpan.FromSeconds(secs) : throw Bad(text, option);
        var total = TimeSpan.Zero;
        var rest = t;
        var any = false;
        foreach (var (unit, span) in new[] { ("h", TimeSpan.FromHours(1)), ("m", TimeSpan.FromMinutes(1)), ("s", TimeSpan.FromSeconds(1)) })
        {
            var i = rest.IndexOf(unit, StringComparison.Ordinal);
            if (i < 0) continue;
            if (!double.TryParse(rest[..i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0) throw Bad(text, option);
            total += span * v;
            rest = rest[(i + 1)..];
            any = true;
        }
        if (!any || rest.Length > 0 || total <= TimeSpan.Zero) throw Bad(text, option);
        return total;
    }

    static ArgumentException Bad(string text, string option) =>
        new($"cannot read {option} '{text}'; use a positive duration: {Syntax}");
}
