using System.Text.Json;

namespace Snce.Cli;

/// <summary>One JSON style for everything the CLI prints or writes: snake_case, indented.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };
}
