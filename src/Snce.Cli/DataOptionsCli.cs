using System.CommandLine;
using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Native;

namespace Snce.Cli;

/// <summary>
/// Options shared by every verb that reads images: <c>--data NAME|DIR --data-dir DIR --size N --channels 1|3
/// --vendor V --limit N</c>. Each verb creates its own instance (an option belongs to one command), adds it with
/// <see cref="AddTo"/> and calls <see cref="Load"/>; built-in data sets are fetched on first use.
/// </summary>
public sealed class DataOptionsCli
{
    public Option<string> Data { get; } = new("--data")
    {
        Description = $"Images to use: a data set name ({BuiltInDataSets.Allowed}), several joined with + (emoji-twitter+emoji-google: both vendors, the same held-out emoji), or an image folder with one subfolder per class.",
        HelpName = "NAME|DIR",
        Required = true,
    };

    public Option<string?> DataDir { get; } = new("--data-dir")
    {
        Description = $"Where fetched data sets are cached (default: {DataSets.DefaultDataDir}; $SNCE_CACHE/data when set).",
        HelpName = "DIR",
    };

    public Option<int?> Size { get; } = new("--size")
    {
        Description = "Image side in pixels (center square crop + resize; default: the data set's own, 28 for MNIST, 64 for emoji).",
        HelpName = "N",
    };

    public Option<int?> Channels { get; } = new("--channels")
    {
        Description = "1 (gray) or 3 (RGB); default: the data set's own.",
        HelpName = "1|3",
    };

    public Option<string?> Vendor { get; } = new("--vendor")
    {
        Description = "Emoji artwork: twitter (default, CC-BY 4.0), google (Apache-2.0) or apple (not licensed for commercial use).",
        HelpName = "twitter|google|apple",
    };

    public Option<int?> Limit { get; } = new("--limit")
    {
        Description = "Use only N images of each split (train and validation; a fixed pseudo-random subset, the same in every command), for quick runs.",
        HelpName = "N",
    };

    public DataOptionsCli()
    {
        Vendor.AcceptOnlyFromAmong("twitter", "google", "apple");
        Channels.AcceptOnlyFromAmong("1", "3");
    }

    /// <summary>Adds the options; <paramref name="withData"/> false for verbs that take the data set as an argument.</summary>
    public void AddTo(Command command, bool withData = true)
    {
        if (withData) command.Options.Add(Data);
        command.Options.Add(DataDir);
        command.Options.Add(Size);
        command.Options.Add(Channels);
        command.Options.Add(Vendor);
        command.Options.Add(Limit);
    }

    /// <summary>The library options these flags stand for; CLI verbs fetch missing data sets (AutoFetch).</summary>
    public DataOptions ToOptions(ParseResult parse) => new()
    {
        DataDir = parse.GetValue(DataDir),
        Size = parse.GetValue(Size),
        Channels = parse.GetValue(Channels),
        Vendor = ParseVendor(parse.GetValue(Vendor)),
        Limit = parse.GetValue(Limit),
        AutoFetch = true,
    };

    /// <summary>
    /// Loads <c>--data</c> (or <paramref name="nameOrDir"/>), with progress and notices on stderr. Call it after
    /// <see cref="DeviceOptions.Resolve"/> (which loads libtorch, CUDA or CPU); verbs without a device call
    /// <see cref="TorchRuntime.EnsureLoaded"/> first. Loading data first would pin the CPU libtorch.
    /// </summary>
    public ImageDataset Load(ParseResult parse, string? nameOrDir = null)
    {
        if (TorchRuntime.Status is null)
            throw new InvalidOperationException("DataOptionsCli.Load needs libtorch loaded: call DeviceOptions.Resolve (or TorchRuntime.EnsureLoaded) first");
        var options = ToOptions(parse);
        using var progress = new DataProgressBar();
        var data = DataSets.Load(nameOrDir ?? parse.GetValue(Data)!, options, progress: progress);
        progress.Dispose();
        PrintNotices(data);
        return data;
    }

    /// <summary>Prints a data set's usage notice and the files an image folder skipped (one line each, to stderr).</summary>
    public static void PrintNotices(ImageDataset data)
    {
        if (data.Notice is { } notice) Console.Error.WriteLine($"notice: {notice}");
        if (data.Skipped.Count == 0) return;
        Console.Error.WriteLine($"skipped {data.Skipped.Count} file(s) in {data.Name}:");
        const int shown = 20;
        foreach (var s in data.Skipped.Take(shown)) Console.Error.WriteLine($"  {s.Path}: {s.Reason}");
        if (data.Skipped.Count > shown) Console.Error.WriteLine($"  ... and {data.Skipped.Count - shown} more");
    }

    public static EmojiVendor? ParseVendor(string? vendor) => vendor switch
    {
        null => null,
        _ when EnumNames<EmojiVendor>.TryParse(vendor) is { } v => v,
        _ => throw new ArgumentException($"unknown emoji vendor '{vendor}'; use twitter, google or apple"),
    };
}
