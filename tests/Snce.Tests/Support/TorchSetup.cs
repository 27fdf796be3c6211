using System.Runtime.CompilerServices;
using Snce.Native;

namespace Snce.Tests.Support;

/// <summary>Loads the native runtime (with the GLIBCXX fix where needed) before any test touches TorchSharp.</summary>
static class TorchSetup
{
    [ModuleInitializer]
    internal static void Init() => TorchRuntime.EnsureLoaded();
}
