using TorchSharp;

namespace Snce.Tests.Tokenizer;

/// <summary>
/// Runs libtorch on one CPU thread for the scope's lifetime, then restores the previous count. Training tests use it:
/// on the shared two-core test machine, libtorch's two OpenMP threads spin at barriers while other processes hold the
/// cores, and a training step ran 10–30× slower than on one thread (seen here, 2026-11-28, load average 8–20).
/// </summary>
public sealed class SingleThread : IDisposable
{
    readonly int previous = torch.get_num_threads();

    public SingleThread() => torch.set_num_threads(1);

    public void Dispose() => torch.set_num_threads(previous);
}

/// <summary>Base for test classes whose tests train: each test runs under <see cref="SingleThread"/>.</summary>
public abstract class SingleThreadTests : IDisposable
{
    readonly SingleThread threads = new();

    public void Dispose()
    {
        threads.Dispose();
        GC.SuppressFinalize(this);
    }
}
