namespace Snce.Native;

/// <summary>The native runtime (libtorch, TorchSharp's native shim, CUDA) could not be set up; the message says what to do.</summary>
public sealed class SnceSetupException(string message, Exception? inner = null) : Exception(message, inner);
