using Snce.Data.BuiltIn;

namespace Snce.Cli;

/// <summary>Shows a library's <see cref="DataProgress"/> as one <see cref="ProgressBar"/> per stage (reports may come from worker threads).</summary>
public sealed class DataProgressBar : IProgress<DataProgress>, IDisposable
{
    readonly Lock gate = new();
    ProgressBar? bar;
    string? stage;

    public void Report(DataProgress value)
    {
        lock (gate) Show(value);
    }

    void Show(DataProgress value)
    {
        if (value.Stage != stage)
        {
            bar?.Dispose();
            stage = value.Stage;
            bar = new ProgressBar(value.Stage, value.Total);
        }
        bar!.Report(value.Done);
    }

    public void Dispose()
    {
        lock (gate)
        {
            bar?.Dispose();
            bar = null;
            stage = null;
        }
    }
}
