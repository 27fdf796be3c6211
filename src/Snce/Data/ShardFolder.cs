using System.Text.Json;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Data;

/// <summary>
/// The loading prologue that <see cref="TokenShards"/> and <see cref="Text.CaptionShards"/> share: the folder's JSON
/// description read and format-checked, and its .npy arrays read with each one kept, so that a load failing half-way
/// disposes what it had read. Every error names the file and <c>rerun</c>, the command that rewrites the folder.
/// </summary>
internal sealed class ShardFolder(string dir, string rerun)
{
    readonly List<Tensor> loaded = [];

    /// <summary>The path of <paramref name="name"/> inside the folder.</summary>
    public string PathOf(string name) => Path.Combine(dir, name);

    /// <summary>
    /// Reads the description file <paramref name="file"/>; throws <see cref="FileNotFoundException"/> with
    /// <paramref name="missing"/> when it is absent, and <see cref="InvalidDataException"/> when it is not JSON, is null,
    /// or has a format tag other than <paramref name="currentFormat"/>. The fields are the caller's to validate.
    /// </summary>
    /// <param name="file">The description's file name inside the folder.</param>
    /// <param name="missing">The message when the file is absent (what the folder is not, and how to make one).</param>
    /// <param name="what">What the file is, for the message on bad JSON ("shard description").</param>
    /// <param name="currentFormat">The format tag this version reads.</param>
    /// <param name="formatOf">The record's format tag.</param>
    public T ReadInfo<T>(string file, string missing, string what, string currentFormat, Func<T, string> formatOf) where T : class
    {
        var path = PathOf(file);
        if (!File.Exists(path)) throw new FileNotFoundException(missing, path);
        T? info;
        try { info = JsonSerializer.Deserialize<T>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid {what} ({e.Message.Split(" Path:")[0].TrimEnd('.')}); the file is damaged or cut short, re-run '{rerun}'"); }
        if (info is null) throw new InvalidDataException($"{path} is empty (null); re-run '{rerun}'");
        if (formatOf(info) != currentFormat)
            throw new InvalidDataException($"{path}: format '{formatOf(info)}' is not '{currentFormat}'; re-run '{rerun}'");
        return info;
    }

    /// <summary>Loads the array <paramref name="name"/>; with <paramref name="dtype"/>, refuses one of another element type.</summary>
    public Tensor Array(string name, ScalarType? dtype = null)
    {
        var t = Npy.Load(PathOf(name));
        loaded.Add(t);
        if (dtype is { } expected && t.dtype != expected)
            throw new InvalidDataException($"{PathOf(name)} holds {t.dtype}, expected {expected}; re-run '{rerun}'");
        return t;
    }

    /// <summary>Loads the array <paramref name="name"/> as <see cref="Array"/> does, or null when the file is absent.</summary>
    public Tensor? OptionalArray(string name, ScalarType dtype) => File.Exists(PathOf(name)) ? Array(name, dtype) : null;

    /// <summary>
    /// Runs <paramref name="load"/> (which reads the arrays through <see cref="Array"/>), then <paramref name="validate"/>
    /// in a dispose scope of its own, so the checks' temporaries are freed at once rather than left to the GC; when either
    /// throws, disposes every array read so far.
    /// </summary>
    public TShards Build<TShards>(Func<TShards> load, Action<TShards> validate)
    {
        try
        {
            var shards = load();
            using (NewDisposeScope()) validate(shards);
            return shards;
        }
        catch
        {
            foreach (var t in loaded) t.Dispose();
            throw;
        }
    }
}
