using Snce.Editing;

namespace Snce.Cli;

/// <summary>The command line's ways of naming an edit region: <c>--box x,y,w,h</c>, and the region names of <c>snce eval --inpaint</c>.</summary>
public static class EditRegionCli
{
    /// <summary>What <c>--inpaint</c> accepts.</summary>
    public const string Allowed = "center, left, right, top, bottom, box:x,y,w,h";

    /// <summary>"x,y,w,h" → a pixel box; throws naming the text.</summary>
    public static EditRegion.Box ParseBox(string text, string flag = "--box")
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != 4 || !parts.All(p => int.TryParse(p, out _)))
            throw new SnceUserException($"cannot read {flag} '{text}'; give four integers x,y,w,h in pixels, e.g. 8,8,16,16");
        var v = parts.Select(int.Parse).ToArray();
        return new EditRegion.Box(v[0], v[1], v[2], v[3]);
    }

    /// <summary>
    /// center (the centered box of half the side, ⌊S/4⌋ from the top left) | left | right | top | bottom (outpaint that half) |
    /// box:x,y,w,h → a region of an S × S image.
    /// </summary>
    public static EditRegion ParseNamed(string text, int size)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "center") return new EditRegion.Box(size / 4, size / 4, size - 2 * (size / 4), size - 2 * (size / 4));
        if (t.StartsWith("box:", StringComparison.Ordinal)) return ParseBox(t[4..], "--inpaint box:");
        if (t is "left" or "right" or "top" or "bottom") return new EditRegion.Outpaint(OutpaintSides.Parse(t));
        throw new SnceUserException($"unknown --inpaint region '{text}'; use one of {Allowed}");
    }

    /// <summary>A short name of a region for logs and JSON.</summary>
    public static string Describe(EditRegion region) => region switch
    {
        EditRegion.Mask => "mask",
        EditRegion.Box b => $"box {b.X},{b.Y},{b.W},{b.H}",
        EditRegion.Outpaint o => $"outpaint {o.Side.ToString().ToLowerInvariant()} {o.Fraction}",
        _ => throw new ArgumentOutOfRangeException(nameof(region), region, null),
    };
}
