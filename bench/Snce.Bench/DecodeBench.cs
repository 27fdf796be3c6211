using System.Diagnostics;
using SkiaSharp;
using Snce.Data;
using Snce.Data.Packages;
using StbImageSharp;
using StbImageWriteSharp;

namespace Snce.Bench;

/// <summary>
/// PNG decode rate of StbImageSharp (managed C#, what the loaders use) vs SkiaSharp (native libpng through Skia) on the
/// data sets' images: MNIST digits from the data cache re-encoded as 28×28 gray PNGs (what an image folder of them holds),
/// and, with --tgz, the emoji-datasource package's own 64×64 RGBA PNGs. Checks first that both decode every image to the
/// same unpremultiplied RGBA pixels.
/// </summary>
public static class DecodeBench
{
    public static int Run(string[] argv)
    {
        var a = new BenchArgs(argv);
        var mnist = a.Int("mnist", 5000);
        var tgz = a.Get("tgz", "");
        var repeats = a.Int("repeats", 3);
        var outDir = a.Get("out", "docs/benchmarks");
        a.RejectUnknown();
        var report = new BenchReport("decode", "snce-bench decode " + string.Join(' ', argv));
        report.Notes.Add($"StbImageSharp {typeof(ImageResult).Assembly.GetName().Version}; SkiaSharp {typeof(SKBitmap).Assembly.GetName().Version} (libpng inside Skia); single thread; best of {repeats}");

        Snce.Native.TorchRuntime.EnsureLoaded();                                              // the data cache is .npy, read through libtorch
        var sets = new List<(string Name, List<byte[]> Pngs)> { ("mnist 28×28 gray", MnistPngs(mnist)) };
        if (tgz.Length > 0)
        {
            var pngs = new List<byte[]>();
            NpmTarball.ForEachFile(tgz, p => p.StartsWith("img/twitter/64/", StringComparison.Ordinal) && p.EndsWith(".png", StringComparison.Ordinal), (_, b) => pngs.Add(b));
            sets.Add(("emoji-twitter 64×64 RGBA", pngs));
        }
        foreach (var (name, pngs) in sets)
        {
            var mismatches = pngs.Count(p => !Stb(p).AsSpan().SequenceEqual(Skia(p)));
            report.Notes.Add($"{name}: {pngs.Count:N0} images, {pngs.Sum(p => (long)p.Length) / pngs.Count:N0} bytes each on average; decoders disagree on {mismatches} of them");
            foreach (var (decoder, decode) in new (string, Func<byte[], byte[]>)[] { ("StbImageSharp", Stb), ("SkiaSharp", Skia) })
            {
                foreach (var p in pngs.Take(50)) decode(p);                                   // warm-up (JIT, native load)
                var best = double.MaxValue;
                for (var r = 0; r < repeats; r++)
                {
                    var clock = Stopwatch.StartNew();
                    foreach (var p in pngs) decode(p);
                    best = Math.Min(best, clock.Elapsed.TotalSeconds);
                }
                report.Add(new()
                {
                    ["data"] = name, ["decoder"] = decoder, ["images"] = pngs.Count, ["seconds"] = best,
                    ["images_per_s"] = pngs.Count / best, ["us_per_image"] = best / pngs.Count * 1e6,
                });
            }
        }
        report.Save(outDir);
        return 0;
    }

    static List<byte[]> MnistPngs(int count)
    {
        using var data = DataSets.Load("mnist", new DataOptions());
        var n = (int)Math.Min(count, data.Images.shape[0]);
        var bytes = data.Images.narrow(0, 0, n).contiguous().bytes.ToArray();          // uint8 [n, 1, 28, 28]
        var side = (int)data.Images.shape[2];
        var result = new List<byte[]>(n);
        for (var i = 0; i < n; i++)
        {
            using var ms = new MemoryStream();
            new ImageWriter().WritePng(bytes[(i * side * side)..((i + 1) * side * side)], side, side, StbImageWriteSharp.ColorComponents.Grey, ms);
            result.Add(ms.ToArray());
        }
        return result;
    }

    static byte[] Stb(byte[] png) => ImageResult.FromMemory(png, StbImageSharp.ColorComponents.RedGreenBlueAlpha).Data;

    static byte[] Skia(byte[] png)
    {
        using var codec = SKCodec.Create(new SKMemoryStream(png)) ?? throw new InvalidDataException("SkiaSharp: not an image");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var pixels = new byte[info.BytesSize];
        unsafe
        {
            fixed (byte* p = pixels)
                if (codec.GetPixels(info, (nint)p) is not (SKCodecResult.Success or SKCodecResult.IncompleteInput) and var r)
                    throw new InvalidDataException($"SkiaSharp: {r}");
        }
        return pixels;
    }
}
