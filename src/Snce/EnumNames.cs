using System.Reflection;
using System.Text.Json.Serialization;

namespace Snce;

/// <summary>
/// The names of an enum's members as its <see cref="JsonStringEnumMemberNameAttribute"/>s spell them: the one place a
/// kind's name is written, read by JSON (manifests), by <see cref="Parse"/> (the command line) and by <see cref="Name"/>.
/// </summary>
public static class EnumNames<T> where T : struct, Enum
{
    static readonly (T Value, string Name)[] Members = typeof(T).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => ((T)f.GetValue(null)!, f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name
            ?? throw new InvalidOperationException($"{typeof(T).Name}.{f.Name} has no JsonStringEnumMemberName")))
        .ToArray();

    /// <summary>The accepted names, comma-separated, in declaration order.</summary>
    public static string Allowed { get; } = string.Join(", ", Members.Select(m => m.Name));

    /// <summary>The name of <paramref name="value"/>; throws for a value outside the enum.</summary>
    public static string Name(T value)
    {
        foreach (var m in Members)
            if (EqualityComparer<T>.Default.Equals(m.Value, value)) return m.Name;
        throw new ArgumentOutOfRangeException(nameof(value), value, $"not a {typeof(T).Name}");
    }

    /// <summary>Name (case-insensitive) → value, or null when no member has that name.</summary>
    public static T? TryParse(string? name)
    {
        foreach (var m in Members)
            if (string.Equals(m.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase)) return m.Value;
        return null;
    }

    /// <summary>Name (case-insensitive) → value; throws naming <paramref name="what"/>, the bad name and the allowed ones.</summary>
    public static T Parse(string name, string what) =>
        TryParse(name) ?? throw new ArgumentException($"unknown {what} '{name}'; use one of {Allowed}");
}
