using System.ComponentModel;
using System.Text.Json.Serialization;

namespace Snce.Data;

/// <summary>Emoji artwork sets (npm emoji-datasource-VENDOR, whose image folder is img/VENDOR/). Apple's images are not licensed for commercial use.</summary>
[Description("emoji vendor")]
public enum EmojiVendor
{
    /// <summary>Twemoji (emoji-datasource-twitter), CC-BY 4.0: samples must credit Twitter.</summary>
    [JsonStringEnumMemberName("twitter")] Twitter,
    /// <summary>Noto Emoji by Google (emoji-datasource-google), Apache-2.0.</summary>
    [JsonStringEnumMemberName("google")] Google,
    /// <summary>Apple's emoji (emoji-datasource-apple), © Apple Inc.: not licensed for commercial use.</summary>
    [JsonStringEnumMemberName("apple")] Apple,
}


/// <summary>How <see cref="DataSets.Load"/> finds and shapes images. A record, so a run can store it with its outputs.</summary>
public sealed record DataOptions
{
    /// <summary>Where built-in data sets are cached (default <see cref="DataSets.DefaultDataDir"/>).</summary>
    public string? DataDir { get; init; }
    /// <summary>Output resolution (square); null = native (28 for MNIST, 64 for emoji; for image folders the images' common size).</summary>
    public int? Size { get; init; }
    /// <summary>1 (gray) or 3 (RGB); null = native.</summary>
    public int? Channels { get; init; }
    /// <summary>Emoji artwork for the name <c>emoji</c> (default twitter).</summary>
    public EmojiVendor? Vendor { get; init; }
    /// <summary>Keep only N images of each split (a fixed pseudo-random subset, the same in every command), for quick runs.</summary>
    public int? Limit { get; init; }
    /// <summary>Validation share. Null = the split saved with the cache (built-in sets) or <see cref="DataSplit.DefaultValidationFraction"/> (folders); a value recomputes the split.</summary>
    public double? ValidationFraction { get; init; }
    /// <summary>Split seed. Null = the saved split (built-in sets) or <see cref="DataSplit.DefaultSeed"/> (folders); a value recomputes the split.</summary>
    public int? Seed { get; init; }
    /// <summary>Fetch a built-in data set that is not cached yet instead of failing.</summary>
    public bool AutoFetch { get; init; }
}
