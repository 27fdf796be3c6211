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
