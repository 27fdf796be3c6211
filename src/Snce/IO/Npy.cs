using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Snce.IO;

/// <summary>
/// NumPy .npy files (format version 1.0/2.0, C order, little-endian) as TorchSharp tensors, so any other
/// implementation (NumPy, PyTorch) can exchange inputs and results with Snce.
/// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
/// </summary>
public static partial class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    static readonly Dictionary<string, ScalarType> Types = new()
    {
        ["<f4"] = ScalarType.Float32, ["<f8"] = ScalarType.Float64, ["<f2"] = ScalarType.Float16,
        ["<i8"] = ScalarType.Int64, ["<i4"] = ScalarType.Int32, ["<i2"] = ScalarType.Int16,
        ["|u1"] = ScalarType.Byte, ["|i1"] = ScalarType.Int8, ["|b1"] = ScalarType.Bool,
    };

    /// <summary>Reads a .npy file into a CPU tensor of the file's dtype and shape.</summary>
    public static Tensor Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such .npy file: {path}", path);
        using var fs = File.OpenRead(path);
        var (dtype, shape) = ReadHeader(fs, path);
        // The header is checked against the file before anything is allocated: a crafted shape cannot ask for terabytes.
        var total = DataBytes(shape, ElementSize.Of(dtype), path);
        var available = fs.Length - fs.Position;
        if (total > available)
            throw new InvalidDataException($"{path}: the header promises a [{string.Join(", ", shape)}] {dtype} array ({total:N0} bytes) but only {available:N0} bytes follow; the file is cut short or damaged");
        var t = empty(shape, dtype);
        using var flat = t.view(-1); // a view: disposing it frees the handle, not the data
        const long chunkElems = 1L << 28;
        var elemSize = t.element_size();
        for (long e0 = 0; e0 < t.numel(); e0 += chunkElems)
        {
            using var part = flat.narrow(0, e0, Math.Min(chunkElems, t.numel() - e0));
            var span = part.bytes;
            fs.ReadExactly(span);
        }
        if (fs.Position != fs.Length)
            throw new InvalidDataException($"{path}: {fs.Length - fs.Position} bytes after the {total}-byte array; the file is not a single .npy array");
        return t;
    }

    /// <summary>Writes a tensor (moved to the CPU, made contiguous) as a .npy file, atomically.</summary>
    public static void Save(string path, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var t = tensor.detach().cpu().contiguous();
        var descr = Types.FirstOrDefault(kv => kv.Value == t.dtype).Key
            ?? throw new ArgumentException($"cannot write dtype {t.dtype} to .npy; supported: {string.Join(", ", Types.Values)}");
        var shape = t.shape.Length == 0 ? "()" : t.shape.Length == 1 ? $"({t.shape[0]},)" : $"({string.Join(", ", t.shape)})";
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        var headerLen = 10 + dict.Length + 1;
        var padded = dict + new string(' ', (64 - headerLen % 64) % 64) + "\n";
        AtomicFile.Write(path, tmp =>
        {
            using var fs = File.Create(tmp);
            fs.Write(Magic);
            var ascii = Encoding.ASCII.GetBytes(padded);
            if (ascii.Length > ushort.MaxValue) throw new ArgumentException("shape too long for a .npy v1 header");
            fs.Write([1, 0, (byte)(ascii.Length & 0xff), (byte)(ascii.Length >> 8)]);
            fs.Write(ascii);
            var flat = t.view(-1);
            const long chunkElems = 1L << 28;
            for (long e0 = 0; e0 < t.numel(); e0 += chunkElems)
            {
                using var part = flat.narrow(0, e0, Math.Min(chunkElems, t.numel() - e0));
                fs.Write(part.bytes);
            }
        });
    }

    /// <summary>Most dimensions accepted (NumPy's own limit is 64).</summary>
    const int MaxDims = 32;

    /// <summary>Bytes of an array of this shape, or <see cref="InvalidDataException"/> for a negative dimension or a size past 2⁶³.</summary>
    internal static long DataBytes(IReadOnlyList<long> shape, int elementSize, string path)
    {
        if (shape.Count > MaxDims) throw new InvalidDataException($"{path}: {shape.Count} dimensions (at most {MaxDims}); the header is damaged");
        long total = elementSize;
        foreach (var d in shape)
        {
            if (d < 0) throw new InvalidDataException($"{path}: negative dimension {d} in shape [{string.Join(", ", shape)}]; the header is damaged");
            try { total = checked(total * d); }
            catch (OverflowException) { throw new InvalidDataException($"{path}: shape [{string.Join(", ", shape)}] is larger than any file can hold; the header is damaged"); }
        }
        return total;
    }

    static (ScalarType, long[]) ReadHeader(Stream fs, string path)
    {
        var magic = new byte[8];
        if (fs.ReadAtLeast(magic, 8, throwOnEndOfStream: false) != 8 || !magic.AsSpan(0, 6).SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a .npy file (bad magic, or shorter than the 10-byte preamble: {fs.Length} bytes); save it with numpy.save");
        long len;
        var lenBytes = new byte[magic[6] == 1 ? 2 : 4];
        if (magic[6] is not (1 or 2 or 3)) throw new InvalidDataException($"{path}: unsupported .npy format version {magic[6]}.{magic[7]}");
        if (fs.ReadAtLeast(lenBytes, lenBytes.Length, throwOnEndOfStream: false) != lenBytes.Length)
            throw new InvalidDataException($"{path}: cut short inside the .npy preamble ({fs.Length} bytes)");
        len = magic[6] == 1 ? lenBytes[0] | lenBytes[1] << 8 : BitConverter.ToUInt32(lenBytes);
        if (len > fs.Length - fs.Position || len > 1 << 20)
            throw new InvalidDataException($"{path}: the .npy header claims {len:N0} bytes but {fs.Length - fs.Position:N0} follow (headers are at most 1 MiB); the file is cut short or damaged");
        var hb = new byte[len];
        fs.ReadExactly(hb);
        var header = Encoding.ASCII.GetString(hb);
        var descr = DescrRe().Match(header);
        var fortran = FortranRe().Match(header);
        var shape = ShapeRe().Match(header);
        if (!descr.Success || !shape.Success) throw new InvalidDataException($"{path}: cannot parse .npy header '{header.Trim()}'");
        if (fortran.Success && fortran.Groups[1].Value == "True")
            throw new InvalidDataException($"{path} is in Fortran order; save a C-contiguous array (numpy.ascontiguousarray)");
        var d = descr.Groups[1].Value;
        if (d == "=f4" || d == "=f8" || d == "=i4" || d == "=i8") d = "<" + d[1..];
        if (!Types.TryGetValue(d, out var dtype))
            throw new InvalidDataException($"{path}: dtype '{d}' is not supported; use little-endian float32/float64/float16, int16/int32/int64, uint8, int8 or bool");
        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(text =>
            long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
                : throw new InvalidDataException($"{path}: cannot read dimension '{text}' of the shape in the .npy header '{header.Trim()}'")).ToArray();
        return (dtype, dims);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']+)'")] private static partial Regex DescrRe();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRe();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRe();
}
