using System.Diagnostics;

namespace Snce.Cli;

/// <summary>
/// A one-line progress display for long work: step/total, a bar, rate (it/s), ETA and caller-supplied
/// metrics. On a terminal it redraws in place (stderr); when output is redirected (logs, CI) it prints a
/// plain line every <c>logEvery</c> so logs stay readable. All verbs use this one class.
/// </summary>
public sealed class ProgressBar : IDisposable
{
    readonly string label;
    readonly long total;
    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly bool interactive = !Console.IsErrorRedirected;
    readonly TimeSpan logEvery;
    readonly long startStep;
    TimeSpan? lastDraw; // null until the first draw (TimeSpan.MinValue would overflow in now − lastDraw)
    string lastLine = "";

    public ProgressBar(string label, long total, long startStep = 0, TimeSpan? logEvery = null)
    {
        this.label = label;
        this.total = Math.Max(1, total);
        this.startStep = startStep;
        this.logEvery = logEvery ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>Shows progress at <paramref name="step"/> (1-based count of finished items) with metrics such as "loss 2.31  psnr 24.1".</summary>
    public void Report(long step, string metrics = "")
    {
        var now = clock.Elapsed;
        var due = lastDraw is not { } last || (interactive ? now - last > TimeSpan.FromMilliseconds(100) : now - last >= logEvery);
        if (!due && step < total) return;
        lastDraw = now;
        var done = step - startStep;
        var rate = done / Math.Max(1e-9, now.TotalSeconds);
        var eta = rate > 0 ? TimeSpan.FromSeconds((total - step) / rate) : TimeSpan.Zero;
        var frac = Math.Clamp((double)step / total, 0, 1);
        const int width = 24;
        var filled = (int)Math.Round(frac * width);
        var bar = new string('#', filled) + new string('.', width - filled);
        lastLine = $"{label} [{bar}] {step}/{total} {rate:F2} it/s ETA {Format(eta)} {metrics}".TrimEnd();
        if (interactive) Console.Error.Write("\r" + lastLine.PadRight(Math.Min(Console.WindowWidth > 0 ? Console.WindowWidth - 1 : 120, Math.Max(lastLine.Length, 80))));
        else Console.Error.WriteLine(lastLine);
    }

    static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";

    public void Dispose()
    {
        if (interactive && lastLine.Length > 0) Console.Error.WriteLine();
    }
}
