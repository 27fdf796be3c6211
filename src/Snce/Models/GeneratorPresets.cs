namespace Snce.Models;

/// <summary>
/// Named backbone shapes. Parameter counts depend on the codebook size K and the class count; the
/// table in docs/generators.md (and <c>snce train --help</c>) gives them for K = 16,384 and 1,000 classes,
/// where <c>B</c> matches LlamaGen's GPT-B (111M).
/// </summary>
public static class GeneratorPresets
{
    /// <summary>The accepted names, for help and errors.</summary>
    public const string Allowed = "tiny, S, B";

    /// <summary>2 layers, d = 64: CPU tests and smoke runs.</summary>
    public static readonly TransformerConfig Tiny = new(Dim: 64, Layers: 2, Heads: 2, FfnMultipleOf: 32);
    /// <summary>12 layers, d = 384, 6 heads: ≈ 34M parameters at K = 16,384 (21M in the blocks).</summary>
    public static readonly TransformerConfig S = new(Dim: 384, Layers: 12, Heads: 6);
    /// <summary>12 layers, d = 768, 12 heads (LlamaGen GPT-B): ≈ 111M parameters at K = 16,384 (85M in the blocks).</summary>
    public static readonly TransformerConfig B = new(Dim: 768, Layers: 12, Heads: 12);

    /// <summary>All presets in size order.</summary>
    public static IReadOnlyList<(string Name, TransformerConfig Config)> All { get; } = [("tiny", Tiny), ("S", S), ("B", B)];

    /// <summary>Looks a preset up by name (case-insensitive); throws naming the allowed ones.</summary>
    public static TransformerConfig Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)).Config
        ?? throw new ArgumentException($"unknown preset '{name}'; use one of {Allowed}");

    /// <summary>The canonical spelling of a preset name.</summary>
    public static string CanonicalName(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)).Name
        ?? throw new ArgumentException($"unknown preset '{name}'; use one of {Allowed}");

    /// <summary>One help line per preset: its shape and parameter count for a given K and class count.</summary>
    public static IEnumerable<string> Describe(int codebookSize = 16_384, int numClasses = 1_000) =>
        All.Select(p =>
        {
            var g = new GeneratorConfig(GeneratorKind.Autoregressive, p.Name, p.Config, codebookSize, 16, 16, numClasses);
            return $"{p.Name}: {p.Config.Layers} layers, d {p.Config.Dim}, {p.Config.Heads} heads, " +
                   $"{g.ParameterCount / 1e6:F1}M parameters at K = {codebookSize:N0} ({p.Config.BlockParameters / 1e6:F1}M in the blocks)";
        });
}
