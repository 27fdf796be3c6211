namespace Snce.Cli;

/// <summary>A problem with what the user asked for, with a message that names it and the fix.</summary>
public sealed class SnceUserException(string message) : Exception(message);
