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

    /// <summary>
    /// Reads every tensor (on the CPU) and the metadata. The header is checked whole against the file (every entry's
    /// dtype, shape and offsets) before anything is allocated; anything wrong is an <see cref="InvalidDataException"/>
    /// naming the file and the entry.
    /// </summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such safetensors file: {path}", path);
        using var fs = File.OpenRead(path);
        var lenBytes = new byte[8];
        if (fs.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) != 8)
            throw new InvalidDataException($"{path} is not a safetensors file: {fs.Length} bytes, shorter than the 8-byte header length that starts one (the file is empty or cut short)");
        var len = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (len > (ulong)Math.Min(fs.Length - 8, 100_000_000))
            throw new InvalidDataException($"{path} is not a safetensors file (header length {len} exceeds the file's {fs.Length - 8} remaining bytes; it is damaged or cut short)");
        var headerBytes = new byte[len];
        fs.ReadExactly(headerBytes);
        var dataStart = 8 + (long)len;
        var entries = ParseHeader(headerBytes, path, fs.Length - dataStart, out var metadata);
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, dtype, shape, begin) in entries)
            {
                var t = empty(shape, dtype);
                tensors[name] = t;
                if (t.numel() == 0) continue;
                fs.Position = dataStart + begin;
                var flat = t.view(-1);
                const long chunk = 1L << 28;
                for (long e0 = 0; e0 < flat.numel(); e0 += chunk)
                {
                    using var part = flat.narrow(0, e0, Math.Min(chunk, flat.numel() - e0));
                    fs.ReadExactly(part.bytes);
                }
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return (tensors, metadata);
    }

    static List<(string Name, ScalarType Dtype, long[] Shape, long Begin)> ParseHeader(byte[] headerBytes, string path, long dataBytes, out Dictionary<string, string> metadata)
    {
        try { _ = StrictUtf8.GetCharCount(headerBytes); }
        catch (DecoderFallbackException) { throw new InvalidDataException($"{path}: the safetensors header is not valid UTF-8 text; the file is damaged"); }
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes) as JsonObject ?? throw new InvalidDataException($"{path}: the safetensors header is not a JSON object; the file is damaged"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: corrupt safetensors header ({e.Message.Split(" Path:")[0].TrimEnd('.')})"); }
        metadata = [];
        var entries = new List<(string, ScalarType, long[], long)>();
        foreach (var (name, node) in header)
        {
            string Where() => name == "__metadata__" ? $"{path}: __metadata__" : $"{path}: tensor '{name}'";
            try
            {
                if (name == "__metadata__")
                {
                    foreach (var (k, v) in (JsonObject)node!) metadata[k] = v!.GetValue<string>();
                    continue;
                }
                var entry = (JsonObject)node!;
                var dtName = entry["dtype"]!.GetValue<string>();
                var dtype = Names.FirstOrDefault(kv => kv.Value == dtName).Key;
                if (!Names.TryGetValue(dtype, out var known) || known != dtName) throw new InvalidDataException($"{Where()} has unsupported dtype {dtName}");
                var shape = ((JsonArray)entry["shape"]!).Select(s => s!.GetValue<long>()).ToArray();
                var offsets = ((JsonArray)entry["data_offsets"]!).Select(s => s!.GetValue<long>()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
                    throw new InvalidDataException($"{Where()}: data_offsets [{string.Join(", ", offsets)}] are not [begin, end] with 0 ≤ begin ≤ end");
                var size = Npy.DataBytes(shape, ElementSize.Of(dtype), $"{path}: tensor '{name}'");
                if (offsets[1] - offsets[0] != size || offsets[1] > dataBytes)
                    throw new InvalidDataException($"{Where()}: data is truncated or inconsistent with its shape [{string.Join(", ", shape)}] ({size:N0} bytes at [{offsets[0]}, {offsets[1]}), {dataBytes:N0} data bytes in the file); the file is damaged or cut short");
                entries.Add((name, dtype, shape, offsets[0]));
            }
            catch (Exception e) when (e is InvalidCastException or InvalidOperationException or NullReferenceException or ArgumentException or FormatException or OverflowException)
            {
                throw new InvalidDataException($"{Where()}: malformed header entry (expected {{\"dtype\": \"F32\", \"shape\": [..], \"data_offsets\": [begin, end]}}); the file is damaged");
            }
        }
        return entries;
    }

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
