using Snce.Data;
using Snce.IO;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>
/// Reads a set of generated images for evaluation: a uint8 .npy [N, C, H, W] (or [N, H, W] gray) with an optional
/// labels .npy (integer [N]); or a folder of images (PNG/JPEG), either flat (unlabeled, sorted by name) or with one
/// subfolder per class named as the data set's class names or as class indices.
/// </summary>
public static class GeneratedImages
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <param name="path">.npy file or folder.</param>
    /// <param name="labelsPath">labels .npy for a .npy or flat folder, or null.</param>
    /// <param name="classes">the data set's class names, to map class subfolder names to labels.</param>
    public static (Tensor Images, Tensor? Labels) Load(string path, string? labelsPath, IReadOnlyList<string> classes)
    {
        var (images, labels) = Directory.Exists(path) ? LoadFolder(path, classes) : (LoadNpy(path), null);
        if (labelsPath is not null)
        {
            if (labels is not null) throw new ArgumentException($"{path} already has labels from its class subfolders; drop --labels");
            using var raw = Npy.Load(labelsPath);
            if (raw.dim() != 1 || raw.shape[0] != images.shape[0] || raw.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Byte))
                throw new InvalidDataException($"{labelsPath}: labels must be integers [{images.shape[0]}] (one per image); got {raw.dtype} [{string.Join(", ", raw.shape)}]");
            labels = raw.to(ScalarType.Int64);
        }
        if (labels is not null && labels.numel() > 0 && (labels.min().item<long>() < 0 || labels.max().item<long>() >= classes.Count))
            throw new InvalidDataException($"labels must be class indices in 0..{classes.Count - 1}; got {labels.min().item<long>()}..{labels.max().item<long>()}");
        return (images, labels);
    }

    static Tensor LoadNpy(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such file or folder: {path}", path);
        if (!path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{path}: give a uint8 .npy [N, C, H, W] or a folder of PNG/JPEG images");
        var t = Npy.Load(path);
        if (t.dtype == ScalarType.Byte && t.dim() == 3) return t.unsqueeze(1);
        if (t.dtype != ScalarType.Byte || t.dim() != 4)
        {
            var got = $"{t.dtype} [{string.Join(", ", t.shape)}]";
            t.Dispose();
            throw new InvalidDataException($"{path}: images must be uint8 [N, C, H, W] (values 0..255); got {got}");
        }
        return t;
    }

    static (Tensor, Tensor?) LoadFolder(string dir, IReadOnlyList<string> classes)
    {
        var files = ImagesIn(dir, SearchOption.TopDirectoryOnly);
        var subdirs = Directory.GetDirectories(dir).Order(StringComparer.Ordinal).ToArray();
        if (files.Length > 0)
            return (Stack(files, dir), null);
        if (subdirs.Length == 0) throw new InvalidDataException($"{dir} has no PNG/JPEG images");
        var parts = new List<(string File, long Label)>();
        foreach (var sub in subdirs)
        {
            var name = Path.GetFileName(sub);
            var label = classes.ToList().IndexOf(name);
            if (label < 0 && int.TryParse(name, out var index) && index >= 0 && index < classes.Count) label = index;
            if (label < 0) throw new InvalidDataException($"{sub}: '{name}' is neither a class of the data set ({string.Join(", ", classes)}) nor a class index");
            parts.AddRange(ImagesIn(sub, SearchOption.AllDirectories).Select(f => (f, (long)label)));
        }
        return (Stack(parts.Select(p => p.File).ToArray(), dir), tensor(parts.Select(p => p.Label).ToArray(), ScalarType.Int64));
    }

    static string[] ImagesIn(string dir, SearchOption option) =>
        Directory.GetFiles(dir, "*", option).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal).ToArray();

    static Tensor Stack(string[] files, string dir)
    {
        if (files.Length == 0) throw new InvalidDataException($"{dir} has no PNG/JPEG images");
        var first = ImageFiles.Load(files[0]);
        var shape = first.shape;
        var all = new List<Tensor> { first };
        try
        {
            foreach (var f in files.Skip(1))
            {
                var img = ImageFiles.Load(f, channels: (int)shape[0]);
                all.Add(img);
                if (!img.shape.SequenceEqual(shape))
                    throw new InvalidDataException($"{f} is [{string.Join(", ", img.shape)}] but {files[0]} is [{string.Join(", ", shape)}]; all generated images must have one size");
            }
            return stack(all, 0);
        }
        finally
        {
            foreach (var t in all) t.Dispose();
        }
    }
}
