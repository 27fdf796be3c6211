using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Snce.Evaluation;

/// <summary>
/// Runs an ONNX graph of the operators ResNet-18 and its preprocessing use (Conv, BatchNormalization, Relu, MaxPool,
/// AveragePool, Add, Sub, Split, Concat) with TorchSharp, so the same weights run on a CUDA device. Each operator
/// follows the ONNX semantics of its attributes, including CNTK's asymmetric pads ([begin_h, begin_w, end_h, end_w]),
/// which become an explicit F.pad (with −∞ for max pooling). Inference only.
/// </summary>
sealed class TorchOnnxInterpreter : IDisposable
{
    readonly OnnxGraph graph;
    readonly Dictionary<string, Tensor> constants = new();
    // Per BatchNormalization node (by output name): y = x · scale + shift, folded from (γ, β, mean, var, ε).
    readonly Dictionary<string, (Tensor Scale, Tensor Shift)> norms = new();

    public TorchOnnxInterpreter(OnnxGraph graph, Device device)
    {
        this.graph = graph;
        foreach (var (name, init) in graph.Initializers)
            constants[name] = tensor(init.Values, init.Shape).to(device).DetachFromDisposeScope();
        foreach (var node in graph.Nodes.Where(n => n.OpType == "BatchNormalization"))
        {
            using var scope = NewDisposeScope();
            var eps = node.FloatOr("epsilon", 1e-5f);
            var (gamma, beta, mean, variance) = (constants[node.Inputs[1]], constants[node.Inputs[2]], constants[node.Inputs[3]], constants[node.Inputs[4]]);
            var scale = gamma / (variance + eps).sqrt();
            var shift = beta - mean * scale;
            norms[node.Outputs[0]] = (scale.view(1, -1, 1, 1).DetachFromDisposeScope(), shift.view(1, -1, 1, 1).DetachFromDisposeScope());
        }
    }

    /// <summary>Feeds <paramref name="input"/> to the graph's single input and returns its single output.</summary>
    public Tensor Run(Tensor input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var values = new Dictionary<string, Tensor> { [graph.Inputs.Single()] = input };
        Tensor Get(string name) => values.TryGetValue(name, out var v) ? v : constants[name];
        foreach (var node in graph.Nodes)
        {
            var x = Get(node.Inputs[0]);
            switch (node.OpType)
            {
                case "Conv":
                    values[node.Outputs[0]] = Conv(node, x, Get(node.Inputs[1]), node.Inputs.Length > 2 ? Get(node.Inputs[2]) : null);
                    break;
                case "BatchNormalization":
                    var (scale, shift) = norms[node.Outputs[0]];
                    values[node.Outputs[0]] = x * scale + shift;
                    break;
                case "Relu": values[node.Outputs[0]] = F.relu(x); break;
                case "Add": values[node.Outputs[0]] = x + Get(node.Inputs[1]); break;
                case "Sub": values[node.Outputs[0]] = x - Get(node.Inputs[1]); break;
                case "MaxPool":
                    Require(node.IntOr("ceil_mode", 0) == 0 && node.IntsOr("dilations", [1, 1]).All(d => d == 1), node, "ceil_mode and dilations are not supported");
                    var (padded, _) = Pad(x, node, double.NegativeInfinity);
                    values[node.Outputs[0]] = F.max_pool2d(padded, node.Ints["kernel_shape"], node.IntsOr("strides", [1, 1]));
                    break;
                case "AveragePool":
                    Require(node.IntsOr("pads", [0, 0, 0, 0]).All(p => p == 0) && node.IntOr("ceil_mode", 0) == 0, node, "padding and ceil_mode are not supported");
                    values[node.Outputs[0]] = F.avg_pool2d(x, node.Ints["kernel_shape"], node.IntsOr("strides", [1, 1]));
                    break;
                case "Split":
                    var axis = node.IntOr("axis", 0);
                    var parts = node.Ints.TryGetValue("split", out var sizes) ? x.split(sizes, axis) : x.chunk(node.Outputs.Length, axis);
                    for (var i = 0; i < node.Outputs.Length; i++) values[node.Outputs[i]] = parts[i];
                    break;
                case "Concat":
                    values[node.Outputs[0]] = cat(node.Inputs.Select(Get).ToArray(), node.IntOr("axis", 0));
                    break;
                default:
                    throw new NotSupportedException($"ONNX operator {node.OpType} is not supported by the TorchSharp interpreter (supported: Conv, BatchNormalization, Relu, MaxPool, AveragePool, Add, Sub, Split, Concat)");
            }
        }
        return values[graph.Outputs.Single()].MoveToOuterDisposeScope();
    }

    static Tensor Conv(OnnxNode node, Tensor x, Tensor w, Tensor? b)
    {
        var (padded, symmetric) = Pad(x, node, 0);
        return F.conv2d(padded, w, b, strides: node.IntsOr("strides", [1, 1]), padding: symmetric,
            dilation: node.IntsOr("dilations", [1, 1]), groups: node.IntOr("group", 1));
    }

    /// <summary>
    /// ONNX pads are [begin_h, begin_w, end_h, end_w]. Symmetric pads are returned for the operator itself;
    /// asymmetric ones are applied here with <paramref name="value"/> and the operator gets none.
    /// </summary>
    static (Tensor, long[]) Pad(Tensor x, OnnxNode node, double value)
    {
        var p = node.IntsOr("pads", [0, 0, 0, 0]);
        Require(p.Length == 4, node, "only 2-D pads are supported");
        if (p[0] == p[2] && p[1] == p[3])
        {
            if (value == 0 || (p[0] == 0 && p[1] == 0)) return (x, [p[0], p[1]]);
        }
        return (F.pad(x, [p[1], p[3], p[0], p[2]], PaddingModes.Constant, value), [0, 0]);
    }

    static void Require(bool ok, OnnxNode node, string what)
    {
        if (!ok) throw new NotSupportedException($"ONNX {node.OpType} node {string.Join(",", node.Outputs)}: {what}");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in constants.Values) t.Dispose();
        foreach (var (s, h) in norms.Values) { s.Dispose(); h.Dispose(); }
    }
}
