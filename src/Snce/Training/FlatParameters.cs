using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Training;

/// <summary>
/// Re-homes a model's parameters into one flat buffer, and their gradients into another, so that the
/// optimizer, gradient clipping, EMA and (later) the data-parallel all-reduce each run a handful of kernels
/// over one tensor instead of a loop over ~100 small ones (TorchSharp's per-parameter optimizer loop is
/// launch-bound on a GPU).
/// </summary>
/// <remarks>
/// Each parameter is <c>set_</c> to a view of <see cref="Values"/> and given a view of <see cref="Grads"/> as its
/// <c>.grad</c>; autograd then accumulates into those views in place (libtorch's AccumulateGrad adds into an
/// existing gradient when grad mode is off during backward). Zero the gradients with
/// <see cref="ZeroGrad"/> — never set them to null. Layout: the weight-decay group first, then the rest; each
/// slot starts at a multiple of <see cref="Alignment"/> elements (aligned views keep cuBLAS on its fast paths).
/// With bf16 weights, <see cref="Master"/> is a separate fp32 copy that the optimizer updates and copies back.
/// </remarks>
public sealed class FlatParameters : IDisposable
{
    /// <summary>Slot alignment in elements.</summary>
    public const long Alignment = 64;

    /// <summary>One parameter's place in the flat buffers.</summary>
    public sealed record Slot(string Name, Parameter Parameter, long Offset, long[] Shape, bool Decay)
    {
        /// <summary>Number of elements.</summary>
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>Takes over the parameters (already in their final dtype and device).</summary>
    public FlatParameters(IEnumerable<(string Name, Parameter Parameter, bool Decay)> parameters)
    {
        var ordered = parameters.Where(p => p.Decay).Concat(parameters.Where(p => !p.Decay)).ToList();
        if (ordered.Count == 0) throw new ArgumentException("no parameters to optimize");
        var dtype = ordered[0].Parameter.dtype;
        var device = ordered[0].Parameter.device;
        if (ordered.Any(p => p.Parameter.dtype != dtype || p.Parameter.device.ToString() != device.ToString()))
            throw new ArgumentException("all parameters must share one dtype and device");
        var slots = new List<Slot>();
        long offset = 0;
        foreach (var (name, p, decay) in ordered)
        {
            if (!decay && DecayElements == 0) DecayElements = offset;
            slots.Add(new Slot(name, p, offset, p.shape, decay));
            offset += (p.numel() + Alignment - 1) / Alignment * Alignment;
        }
        if (ordered.All(p => p.Decay)) DecayElements = offset;
        Slots = slots;
        Size = offset;
        Values = zeros(Size, dtype: dtype, device: device);
        Grads = zeros(Size, dtype: dtype, device: device);
        using (no_grad())
        {
            foreach (var s in slots)
            {
                using var scope = NewDisposeScope();
                var view = Values.narrow(0, s.Offset, s.Count).view(s.Shape);
                view.copy_(s.Parameter);
                s.Parameter.set_(view);
                s.Parameter.grad = Grads.narrow(0, s.Offset, s.Count).view(s.Shape);
            }
        }
        Master = dtype == ScalarType.Float32 ? Values : Values.to_type(ScalarType.Float32);
    }

    /// <summary>Elements in each flat buffer (including alignment padding, which stays zero).</summary>
    public long Size { get; }

    /// <summary>Elements [0, DecayElements) hold the weight-decay group.</summary>
    public long DecayElements { get; }

    /// <summary>The parameters in buffer order.</summary>
    public IReadOnlyList<Slot> Slots { get; }

    /// <summary>The model's weights (model dtype); the parameters are views of it.</summary>
    public Tensor Values { get; }

    /// <summary>The gradients (model dtype); each parameter's .grad is a view of it.</summary>
    public Tensor Grads { get; }

    /// <summary>fp32 master weights: <see cref="Values"/> itself for fp32 models, else a separate copy.</summary>
    public Tensor Master { get; }

    /// <summary>True when <see cref="Master"/> is separate from <see cref="Values"/> (bf16 weights).</summary>
    public bool HasSeparateMaster => !ReferenceEquals(Master, Values);

    /// <summary>Zeroes all gradients in one kernel.</summary>
    public void ZeroGrad() => Grads.zero_();

    /// <summary>Copies the master weights into the model's weights (after an update or a load).</summary>
    public void SyncValuesFromMaster()
    {
        if (HasSeparateMaster) Values.copy_(Master);
    }

    /// <summary>Named views [shape] of a flat fp32 buffer laid out like this one (master, EMA, Adam moments).</summary>
    public Dictionary<string, Tensor> Views(Tensor flat) =>
        Slots.ToDictionary(s => s.Name, s => flat.narrow(0, s.Offset, s.Count).view(s.Shape));

    /// <summary>Copies named tensors into a flat buffer laid out like this one; throws naming missing or mis-shaped entries.</summary>
    public void Load(Tensor flat, IReadOnlyDictionary<string, Tensor> named, string what)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var s in Slots)
        {
            if (!named.TryGetValue(s.Name, out var t)) throw new InvalidDataException($"{what}: missing tensor '{s.Name}'");
            if (!t.shape.SequenceEqual(s.Shape))
                throw new InvalidDataException($"{what}: '{s.Name}' has shape [{string.Join(", ", t.shape)}], the model expects [{string.Join(", ", s.Shape)}]");
            flat.narrow(0, s.Offset, s.Count).copy_(t.reshape(-1));
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (HasSeparateMaster) Master.Dispose();
        Values.Dispose();
        Grads.Dispose();
    }
}
