using System.ComponentModel;
using System.Reflection;
using System.Text.Json.Serialization;

namespace Snce;

/// <summary>
/// The names of an enum's members as its <see cref="JsonStringEnumMemberNameAttribute"/>s spell them: the one place a
/// kind's name is written, read by JSON (manifests), by <see cref="Parse"/> (the command line) and by <see cref="Name"/>
/// (also as the extension <c>value.Name()</c>, <see cref="EnumNameExtensions.Name{T}"/>). The enum's
/// <see cref="DescriptionAttribute"/> says what a value is called in <see cref="Parse"/>'s error ("mask schedule").
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

    /// <summary>What a value is called in messages: the enum's <see cref="DescriptionAttribute"/>.</summary>
    public static string What => typeof(T).GetCustomAttribute<DescriptionAttribute>()?.Description
        ?? throw new InvalidOperationException($"{typeof(T).Name} has no [Description] saying what its values are called");

    /// <summary>Name (case-insensitive) → value; throws naming <see cref="What"/>, the bad name and the allowed ones.</summary>
    public static T Parse(string name) =>
        TryParse(name) ?? throw new ArgumentException($"unknown {What} '{name}'; use one of {Allowed}");
}

/// <summary>The name of any enum value whose members carry <see cref="JsonStringEnumMemberNameAttribute"/>s (<see cref="EnumNames{T}"/>).</summary>
public static class EnumNameExtensions
{
    /// <summary>The value's JSON and command-line name (<c>LossKind.Snce.Name()</c> is "snce"); throws for a value outside the enum.</summary>
    public static string Name<T>(this T value) where T : struct, Enum => EnumNames<T>.Name(value);
}
