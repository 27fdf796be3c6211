using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Snce.IO;

/// <summary>
/// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data),
/// readable by Python's <c>safetensors</c> and PyTorch. Spec: https://github.com/huggingface/safetensors#format
/// </summary>
public static class Safetensors
{
    static readonly Dictionary<ScalarType, string> Names = new()
    {
        [ScalarType.Float64] = "F64", [ScalarType.Float32] = "F32", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16",
        [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32", [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8",
        [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };

    /// <summary>Writes named tensors (moved to CPU) and string metadata, atomically.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        var ordered = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, T: kv.Value.detach().cpu().contiguous())).ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));
        long offset = 0;
        foreach (var (name, t) in ordered)
        {
            if (!Names.TryGetValue(t.dtype, out var dt)) throw new ArgumentException($"tensor '{name}': dtype {t.dtype} cannot be stored in safetensors");
            var size = t.numel() * t.element_size();
            header[name] = new JsonObject
            {
                ["dtype"] = dt,
                ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + size),
            };
            offset += size;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var pad = (8 - json.Length % 8) % 8;
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (var i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';
        AtomicFile.Write(path, tmp =>
        {
            using var fs = File.Create(tmp);
            var len = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            fs.Write(len);
            fs.Write(headerBytes);
            foreach (var (_, t) in ordered)
            {
                if (t.numel() == 0) continue;
                var flat = t.view(-1);
                const long chunk = 1L << 28;
                for (long e0 = 0; e0 < flat.numel(); e0 += chunk)
                {
                    using var part = flat.narrow(0, e0, Math.Min(chunk, flat.numel() - e0));
                    fs.Write(part.bytes);
                }
            }
        });
    }

    /// <summary>Reads every tensor (on the CPU) and the metadata.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such safetensors file: {path}", path);
        using var fs = File.OpenRead(path);
        var lenBytes = new byte[8];
        fs.ReadExactly(lenBytes);
        var len = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (len > (ulong)Math.Min(fs.Length - 8, 100_000_000))
            throw new InvalidDataException($"{path} is not a safetensors file (header length {len} exceeds the file)");
        var headerBytes = new byte[len];
        fs.ReadExactly(headerBytes);
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)!.AsObject(); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: corrupt safetensors header ({e.Message})"); }
        var dataStart = 8 + (long)len;
        var tensors = new Dictionary<string, Tensor>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) metadata[k] = v!.GetValue<string>();
                continue;
            }
            var dtName = node!["dtype"]!.GetValue<string>();
            var dtype = Names.FirstOrDefault(kv => kv.Value == dtName).Key;
            if (!Names.ContainsKey(dtype) || Names[dtype] != dtName) throw new InvalidDataException($"{path}: tensor '{name}' has unsupported dtype {dtName}");
            var shape = node["shape"]!.AsArray().Select(s => s!.GetValue<long>()).ToArray();
            var offsets = node["data_offsets"]!.AsArray().Select(s => s!.GetValue<long>()).ToArray();
            var t = empty(shape, dtype);
            var size = t.numel() * t.element_size();
            if (offsets[1] - offsets[0] != size || dataStart + offsets[1] > fs.Length)
                throw new InvalidDataException($"{path}: tensor '{name}' data is truncated or inconsistent with its shape; the file is damaged");
            fs.Position = dataStart + offsets[0];
            if (t.numel() > 0)
            {
                var flat = t.view(-1);
                const long chunk = 1L << 28;
                for (long e0 = 0; e0 < flat.numel(); e0 += chunk)
                {
                    using var part = flat.narrow(0, e0, Math.Min(chunk, flat.numel() - e0));
                    fs.ReadExactly(part.bytes);
                }
            }
            tensors[name] = t;
        }
        return (tensors, metadata);
    }
}
