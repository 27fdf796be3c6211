using System.Text.Json;
using Snce.Tests.Support;

namespace Snce.Tests.Cli;

public class CliTests
{
    [Fact]
    public void HelpListsEveryVerb()
    {
        var r = CliRunner.Run("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var verb in Snce.Cli.SnceCli.Build().Subcommands)
            Assert.Contains($"  {verb.Name}", r.Stdout);
        Assert.Contains("info", r.Stdout);
    }

    [Fact]
    public void EveryVerbHasHelpThatNamesItsOptions()
    {
        foreach (var verb in AllCommands(Snce.Cli.SnceCli.Build()).Where(c => c.Parents.Any()))
        {
            var path = PathOf(verb);
            var r = CliRunner.Run([.. path, "--help"]);
            Assert.True(r.ExitCode == 0, $"snce {string.Join(' ', path)} --help failed: {r.Stderr}");
            foreach (var o in verb.Options.Where(o => !o.Hidden))
                Assert.Contains(o.Name, r.Stdout);
            Assert.False(string.IsNullOrWhiteSpace(verb.Description), $"snce {string.Join(' ', path)} has no description");
        }
    }

    [Fact]
    public void UnknownOptionFailsWithOneLineReason()
    {
        var r = CliRunner.Run("info", "--bogus");
        Assert.Equal(Snce.Cli.SnceCli.UsageError, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--bogus", line);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void UnknownVerbFails()
    {
        var r = CliRunner.Run("frobnicate");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("frobnicate", r.Stderr);
    }

    [Fact]
    public void BadDeviceFailsClearly()
    {
        var r = CliRunner.Run("info", "--device", "tpu");
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("tpu", r.Stderr);
        Assert.Contains("cuda:N", r.Stderr);
    }

    [Fact]
    public void InfoJsonHasTheDocumentedFields()
    {
        var r = CliRunner.Run("info", "--json", "--device", "cpu");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var report = doc.RootElement.GetProperty("report");
        Assert.Equal("0.107.0", report.GetProperty("torchsharp_version").GetString());
        Assert.Matches(@"^\d+\.\d+", report.GetProperty("snce_version").GetString());
        Assert.Matches(@"^2\.\d+", report.GetProperty("libtorch_version").GetString());
        Assert.True(Directory.Exists(report.GetProperty("libtorch_dir").GetString()));
        Assert.True(File.Exists(report.GetProperty("libtorchsharp_path").GetString()));
        Assert.Contains(report.GetProperty("glibcxx_fix_applied").ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
        Assert.InRange(report.GetProperty("cpu_threads").GetInt32(), 1, Environment.ProcessorCount);
        Assert.False(report.GetProperty("cuda_available").GetBoolean());
        Assert.Equal(JsonValueKind.Array, report.GetProperty("gpus").ValueKind);
        Assert.True(report.GetProperty("bf16_supported").GetBoolean());
        Assert.Equal("cpu", report.GetProperty("device").GetString());
    }

    [Fact]
    public void CudaOnAMachineWithoutItNamesTheFix()
    {
        var r = CliRunner.Run("info", "--device", "cuda");
        Assert.Equal(Snce.Cli.SnceCli.RuntimeError, r.ExitCode);
        Assert.Contains("--libtorch", r.Stderr);
        Assert.Contains("--device cpu", r.Stderr);
    }

    static IEnumerable<System.CommandLine.Command> AllCommands(System.CommandLine.Command c) =>
        new[] { c }.Concat(c.Subcommands.SelectMany(AllCommands));

    static string[] PathOf(System.CommandLine.Command c)
    {
        var names = new List<string>();
        for (System.CommandLine.Symbol? s = c; s is System.CommandLine.Command cmd && cmd.Parents.Any(); s = cmd.Parents.First())
            names.Insert(0, cmd.Name);
        return [.. names];
    }
}
