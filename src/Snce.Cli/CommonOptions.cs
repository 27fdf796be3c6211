using System.CommandLine;
using Snce.Native;
using TorchSharp;

namespace Snce.Cli;

/// <summary>Options shared by every verb that computes. Each verb creates its own instances (an option belongs to one command).</summary>
public sealed class DeviceOptions
{
    public Option<string> Device { get; } = new("--device")
    {
        Description = $"Where to compute: {DeviceRequest.Allowed}. 'auto' takes CUDA when a CUDA libtorch is found, else the CPU.",
        DefaultValueFactory = _ => "auto",
        HelpName = "auto|cpu|cuda|cuda:N",
    };

    public Option<string?> LibTorch { get; } = new("--libtorch")
    {
        Description = $"PyTorch's torch/lib folder, for CUDA (default: ${LibTorchLocator.EnvironmentVariable}, else found with python3 when CUDA is asked for).",
        HelpName = "DIR",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Device);
        command.Options.Add(LibTorch);
    }

    /// <summary>Loads the native runtime and returns the chosen device.</summary>
    public torch.Device Resolve(ParseResult parse) =>
        ComputeDevice.Resolve(DeviceRequest.Parse(parse.GetValue(Device)!), parse.GetValue(LibTorch));
}

/// <summary><c>--cfg-schedule</c> of the verbs that sample: how the guidance scale varies over one decoding.</summary>
public static class CfgScheduleOption
{
    /// <summary>A new option (one per command); <paramref name="prefix"/> starts its description, e.g. "With --checkpoint: ".</summary>
    public static Option<string> Create(string prefix = "")
    {
        var option = new Option<string>("--cfg-schedule")
        {
            Description = prefix + "How the guidance scale varies over the decoding: constant (--cfg at every step) or linear (1 at the first step, " +
                "--cfg at the last; the AR generator ramps over the token positions, the masked one over its decoding steps).",
            DefaultValueFactory = _ => "constant",
            HelpName = EnumNames<Snce.Sampling.CfgSchedule>.Allowed.Replace(", ", "|"),
        };
        option.AcceptOnlyFromAmong(EnumNames<Snce.Sampling.CfgSchedule>.Allowed.Split(", "));
        return option;
    }

    /// <summary>The parsed schedule.</summary>
    public static Snce.Sampling.CfgSchedule Parse(ParseResult parse, Option<string> option) => EnumNames<Snce.Sampling.CfgSchedule>.Parse(parse.GetValue(option)!);
}
