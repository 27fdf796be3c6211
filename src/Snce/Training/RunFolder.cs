namespace Snce.Training;

/// <summary>
/// The layout of a generator run folder, the one place its paths are spelled: <c>metrics.jsonl</c> (<see cref="MetricsLog"/>),
/// <c>tb/</c> (TensorBoard), <c>checkpoint/</c> (<see cref="GeneratorCheckpoint"/>: checkpoint.json and the weights), and
/// <c>config.json</c> (a flat description: <c>snce study</c> writes one per run, which groups seeds by its label),
/// <c>best/</c> (<see cref="BestCheckpoint"/>) and <c>final-last.json</c> / <c>final-best.json</c> (final evaluations).
/// </summary>
/// <param name="Root">The run folder.</param>
public sealed record RunFolder(string Root)
{
    /// <summary>File and folder names inside a run folder.</summary>
    public const string MetricsFileName = "metrics.jsonl", ConfigFileName = "config.json", CheckpointFolderName = "checkpoint", BestFolderName = "best", TensorBoardFolderName = "tb";

    /// <summary>The metric records, one JSON object per line.</summary>
    public string Metrics => Path.Combine(Root, MetricsFileName);
    /// <summary>TensorBoard event files.</summary>
    public string TensorBoard => Path.Combine(Root, TensorBoardFolderName);
    /// <summary>The checkpoint folder (written atomically, see <see cref="CheckpointFolder"/>).</summary>
    public string Checkpoint => Path.Combine(Root, CheckpointFolderName);
    /// <summary>The best checkpoint by a <c>--keep-best</c> rule (see <see cref="BestCheckpoint"/>), where one is kept.</summary>
    public string Best => Path.Combine(Root, BestFolderName);
    /// <summary>The checkpoint's manifest.</summary>
    public string Manifest => Path.Combine(Checkpoint, GeneratorCheckpoint.ManifestFile);
    /// <summary>The flat run description (loss, codebook_size, objective, seed), where there is one.</summary>
    public string Config => Path.Combine(Root, ConfigFileName);

    /// <summary>
    /// A final evaluation of the run's <paramref name="which"/> checkpoint (<c>last</c>, <c>best</c>) at a larger sample count
    /// than its curves: <c>final-WHICH.json</c>, as <c>snce study --final-eval-images</c> writes it.
    /// </summary>
    public string FinalEvaluation(string which) => Path.Combine(Root, $"final-{which}.json");

    /// <summary>Whether the run has logged anything.</summary>
    public bool HasMetrics => File.Exists(Metrics);

    /// <summary>The run folder of <paramref name="path"/>: the path itself, or the parent of a <c>checkpoint/</c> or <c>best/</c> folder.</summary>
    public static RunFolder Of(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        return new RunFolder(Path.GetFileName(full) is CheckpointFolderName or BestFolderName && !File.Exists(Path.Combine(full, CheckpointFolderName, GeneratorCheckpoint.ManifestFile))
            ? Path.GetDirectoryName(full)! : path);
    }
}
