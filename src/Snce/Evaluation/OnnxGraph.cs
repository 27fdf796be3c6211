using System.Runtime.InteropServices;
using System.Text;

namespace Snce.Evaluation;

/// <summary>One ONNX node: operator, input and output value names, and its int/float attributes.</summary>
sealed record OnnxNode(string OpType, string[] Inputs, string[] Outputs, IReadOnlyDictionary<string, long[]> Ints, IReadOnlyDictionary<string, float> Floats)
{
    public long[] IntsOr(string name, long[] fallback) => Ints.TryGetValue(name, out var v) ? v : fallback;
    public long IntOr(string name, long fallback) => Ints.TryGetValue(name, out var v) && v.Length == 1 ? v[0] : fallback;
    public float FloatOr(string name, float fallback) => Floats.TryGetValue(name, out var v) ? v : fallback;
}

/// <summary>A float32 initializer: shape and values.</summary>
sealed record OnnxInitializer(long[] Shape, float[] Values);

/// <summary>
/// The parts of an ONNX model a graph interpreter needs, read from the protobuf wire format (no ONNX library):
/// nodes in order (GraphProto.node = 1: NodeProto input 1, output 2, op_type 4, attribute 5 with name 1,
/// f 2, i 3, floats 7, ints 8), float32 initializers (GraphProto.initializer = 5: TensorProto dims 1,
/// data_type 2 (1 = FLOAT), float_data 4, name 8, raw_data 9), and the graph's input and output names (11, 12).
/// Field numbers from onnx/onnx.proto3.
/// </summary>
sealed class OnnxGraph
{
    public required IReadOnlyList<OnnxNode> Nodes { get; init; }
    public required IReadOnlyDictionary<string, OnnxInitializer> Initializers { get; init; }
    public required string[] Inputs { get; init; }
    public required string[] Outputs { get; init; }

    public static OnnxGraph Read(byte[] model)
    {
        var graph = Protobuf.Fields(model).Where(f => f.Number == 7).Select(f => f.Bytes(model)).SingleOrDefault()
            ?? throw new InvalidDataException("the ONNX model has no graph");
        var nodes = new List<OnnxNode>();
        var inits = new Dictionary<string, OnnxInitializer>();
        var inputs = new List<string>();
        var outputs = new List<string>();
        foreach (var f in Protobuf.Fields(graph))
        {
            switch (f.Number)
            {
                case 1: nodes.Add(Node(f.Bytes(graph))); break;
                case 5: var (name, init) = Initializer(f.Bytes(graph)); inits[name] = init; break;
                case 11: inputs.Add(NameOf(f.Bytes(graph))); break;
                case 12: outputs.Add(NameOf(f.Bytes(graph))); break;
            }
        }
        return new OnnxGraph { Nodes = nodes, Initializers = inits, Inputs = inputs.Where(i => !inits.ContainsKey(i)).ToArray(), Outputs = [.. outputs] };
    }

    static string NameOf(byte[] valueInfo) =>
        Protobuf.Fields(valueInfo).Where(f => f.Number == 1).Select(f => Encoding.UTF8.GetString(f.Bytes(valueInfo))).First();

    static OnnxNode Node(byte[] b)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        var op = "";
        var ints = new Dictionary<string, long[]>();
        var floats = new Dictionary<string, float>();
        foreach (var f in Protobuf.Fields(b))
        {
            switch (f.Number)
            {
                case 1: inputs.Add(Encoding.UTF8.GetString(f.Bytes(b))); break;
                case 2: outputs.Add(Encoding.UTF8.GetString(f.Bytes(b))); break;
                case 4: op = Encoding.UTF8.GetString(f.Bytes(b)); break;
                case 5:
                    var a = f.Bytes(b);
                    string? name = null;
                    var values = new List<long>();
                    float? value = null;
                    foreach (var g in Protobuf.Fields(a))
                    {
                        if (g.Number == 1) name = Encoding.UTF8.GetString(g.Bytes(a));
                        else if (g.Number == 2 && g.Wire == 5) value = BitConverter.ToSingle(a, g.Start);
                        else if (g.Number == 3 && g.Wire == 0) values.Add((long)g.Varint);
                        else if (g.Number == 8) values.AddRange(g.Wire == 0 ? [(long)g.Varint] : Protobuf.PackedVarints(g.Bytes(a)).Select(v => (long)v));
                    }
                    if (name is null) break;
                    if (value is { } v) floats[name] = v;
                    else if (values.Count > 0) ints[name] = [.. values];
                    break;
            }
        }
        return new OnnxNode(op, [.. inputs], [.. outputs], ints, floats);
    }

    static (string, OnnxInitializer) Initializer(byte[] b)
    {
        var dims = new List<long>();
        string name = "";
        long type = 0;
        float[]? values = null;
        foreach (var f in Protobuf.Fields(b))
        {
            switch (f.Number)
            {
                case 1: dims.AddRange(f.Wire == 0 ? [(long)f.Varint] : Protobuf.PackedVarints(f.Bytes(b)).Select(v => (long)v)); break;
                case 2: type = (long)f.Varint; break;
                case 4: values = MemoryMarshal.Cast<byte, float>(f.Bytes(b)).ToArray(); break;
                case 8: name = Encoding.UTF8.GetString(f.Bytes(b)); break;
                case 9: values = MemoryMarshal.Cast<byte, float>(f.Bytes(b)).ToArray(); break;
            }
        }
        if (type != 1) throw new InvalidDataException($"ONNX initializer '{name}' has data type {type}; only FLOAT (1) is supported");
        var count = dims.Aggregate(1L, (a, d) => a * d);
        if (values is null || values.Length != count) throw new InvalidDataException($"ONNX initializer '{name}' has {values?.Length ?? 0} values for shape [{string.Join(", ", dims)}]");
        return (name, new OnnxInitializer([.. dims], values));
    }
}

/// <summary>Minimal protobuf wire-format reading (little-endian; float_data and raw_data are little-endian too).</summary>
static class Protobuf
{
    public readonly record struct Field(int Number, int Wire, ulong Varint, int Start, int Length)
    {
        public byte[] Bytes(byte[] message) => message.AsSpan(Start, Length).ToArray();
    }

    public static IEnumerable<Field> Fields(byte[] message)
    {
        var pos = 0;
        while (pos < message.Length)
        {
            var key = ReadVarint(message, ref pos);
            var wire = (int)(key & 7);
            var number = (int)(key >> 3);
            switch (wire)
            {
                case 0: yield return new Field(number, wire, ReadVarint(message, ref pos), 0, 0); break;
                case 1: yield return new Field(number, wire, 0, pos, 8); pos += 8; break;
                case 5: yield return new Field(number, wire, 0, pos, 4); pos += 4; break;
                case 2:
                    var len = (int)ReadVarint(message, ref pos);
                    if (pos + len > message.Length) throw new InvalidDataException("truncated ONNX protobuf");
                    yield return new Field(number, wire, 0, pos, len);
                    pos += len;
                    break;
                default: throw new InvalidDataException($"unsupported protobuf wire type {wire} in the ONNX model");
            }
        }
    }

    public static IEnumerable<ulong> PackedVarints(byte[] b)
    {
        var pos = 0;
        while (pos < b.Length) yield return ReadVarint(b, ref pos);
    }

    public static ulong ReadVarint(byte[] b, ref int pos)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (pos >= b.Length) throw new InvalidDataException("truncated ONNX protobuf varint");
            var c = b[pos++];
            value |= (ulong)(c & 0x7f) << shift;
            if (c < 0x80) return value;
        }
        throw new InvalidDataException("malformed ONNX protobuf varint");
    }
}
