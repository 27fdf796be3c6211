namespace Snce.Distributed;

/// <summary>
/// Multi-process training could not be set up or lost a peer (bad torchrun variables, a rendezvous that timed out
/// or was refused, an NCCL error); the message names the variable, rank or call and what to do.
/// </summary>
public sealed class DistributedSetupException(string message, Exception? inner = null) : Exception(message, inner);
