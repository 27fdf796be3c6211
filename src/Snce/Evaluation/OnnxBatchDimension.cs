using System.Buffers;

namespace Snce.Evaluation;

/// <summary>
/// Makes the batch dimension of an ONNX graph's inputs and outputs dynamic. The CNTK export of ResNet-18 fixes
/// it to 1 (<c>dim_value: 1</c>), which would force one image per call; this rewrites the first dimension of
/// every graph input, output and intermediate value_info to <c>dim_param: "batch"</c>. Nothing else in the graph (convolutions,
/// batch norms, pools, broadcasting Sub) depends on the batch size.
/// </summary>
/// <remarks>
/// Operates on the protobuf wire format directly (no ONNX library is needed): ModelProto.graph (7) →
/// GraphProto.input (11) / output (12) / value_info (13) → ValueInfoProto.type (2) → TypeProto.tensor_type (1) →
/// TypeProto.Tensor.shape (2) → TensorShapeProto.dim (1, the first one) → Dimension.dim_value (1) / dim_param (2).
/// Field numbers from onnx/onnx.proto3.
/// </remarks>
static class OnnxBatchDimension
{
    const int WireVarint = 0, Wire64 = 1, WireLength = 2, Wire32 = 5;

    /// <summary>Returns a copy of the model whose graph inputs and outputs take any batch size.</summary>
    public static byte[] MakeDynamic(byte[] model)
    {
        var changed = 0;
        var result = Rewrite(model, (field, payload) => field == 7
            ? Rewrite(payload, (f, p) => f is 11 or 12 or 13 ? Rewrite(p, (f2, p2) => f2 == 2
                ? Rewrite(p2, (f3, p3) => f3 == 1
                    ? Rewrite(p3, (f4, p4) => f4 == 2 ? FirstDimToBatch(p4, ref changed) : null)
                    : null)
                : null) : null)
            : null);
        if (changed == 0) throw new InvalidDataException("the ONNX model has no graph input or output with a fixed batch dimension of 1 to make dynamic");
        return result;
    }

    delegate byte[]? FieldRewriter(int field, byte[] payload);

    static byte[]? FirstDimToBatch(byte[] shape, ref int changed)
    {
        var first = true;
        var local = 0;
        var result = Rewrite(shape, (f, dim) =>
        {
            if (f != 1 || !first) return null;
            first = false;
            // Dimension { dim_value: 1 } is exactly the two bytes 08 01.
            if (dim.Length != 2 || dim[0] != (1 << 3 | WireVarint) || dim[1] != 1) return null;
            local++;
            return [2 << 3 | WireLength, 5, (byte)'b', (byte)'a', (byte)'t', (byte)'c', (byte)'h'];
        });
        changed += local;
        return result;
    }

    /// <summary>Copies a message field by field; length-delimited fields for which <paramref name="rewrite"/> returns bytes are replaced.</summary>
    static byte[] Rewrite(byte[] message, FieldRewriter rewrite)
    {
        var output = new ArrayBufferWriter<byte>(message.Length + 64);
        var pos = 0;
        while (pos < message.Length)
        {
            var start = pos;
            var key = Protobuf.ReadVarint(message, ref pos);
            var field = (int)(key >> 3);
            switch ((int)(key & 7))
            {
                case WireVarint: Protobuf.ReadVarint(message, ref pos); break;
                case Wire64: pos += 8; break;
                case Wire32: pos += 4; break;
                case WireLength:
                    var len = (int)Protobuf.ReadVarint(message, ref pos);
                    var payloadStart = pos;
                    pos += len;
                    if (pos > message.Length) throw new InvalidDataException("truncated ONNX protobuf");
                    var replaced = rewrite(field, message[payloadStart..pos]);
                    if (replaced is null) break;
                    WriteVarint(output, key);
                    WriteVarint(output, (ulong)replaced.Length);
                    output.Write(replaced);
                    continue;
                default: throw new InvalidDataException($"unsupported protobuf wire type {key & 7} in the ONNX model");
            }
            output.Write(message.AsSpan(start, pos - start));
        }
        return output.WrittenSpan.ToArray();
    }

    static void WriteVarint(ArrayBufferWriter<byte> output, ulong value)
    {
        Span<byte> buf = stackalloc byte[10];
        var n = 0;
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            buf[n++] = value != 0 ? (byte)(b | 0x80) : b;
        } while (value != 0);
        output.Write(buf[..n]);
    }
}
