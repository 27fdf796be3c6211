using System.Buffers.Binary;
using System.Text;

namespace Snce.Native;

/// <summary>
/// Marks one version requirement of an ELF64 little-endian shared library as weak
/// (VER_FLG_WEAK on its <c>.gnu.version_r</c> auxiliary entry), so that the dynamic loader only
/// warns when the version is missing instead of refusing to load the library.
/// </summary>
/// <remarks>
/// Why: TorchSharp 0.107's libLibTorchSharp.so is built with GCC 13 and requires GLIBCXX_3.4.32,
/// which Debian 12's libstdc++ lacks. The only symbol behind that version is
/// <c>_ZSt21ios_base_library_initv</c>, referenced but never called (see shared/FACTS.md).
/// Layout: System V gABI, "Symbol Versioning" (Elf64_Verneed / Elf64_Vernaux).
/// </remarks>
public static class ElfVersionPatch
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>Result of inspecting or patching one version requirement.</summary>
    public enum Outcome
    {
        /// <summary>The library requires no symbol version of that name; nothing to do.</summary>
        NotRequired,
        /// <summary>Every requirement of that name was already weak; the bytes are unchanged.</summary>
        AlreadyWeak,
        /// <summary>At least one requirement of that name was made weak; the bytes changed and must be written back.</summary>
        Patched,
    }


    /// <summary>Lists the version names a library requires (e.g. GLIBCXX_3.4.32) with their weak flag.</summary>
    public static IReadOnlyList<(string Library, string Version, bool Weak)> Requirements(byte[] elf)
    {
        var list = new List<(string, string, bool)>();
        Walk(elf, (lib, ver, flagsOffset) =>
        {
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(flagsOffset));
            list.Add((lib, ver, (flags & VerFlgWeak) != 0));
        });
        return list;
    }

    /// <summary>Sets VER_FLG_WEAK on every requirement named <paramref name="version"/>, in place.</summary>
    public static Outcome MakeWeak(byte[] elf, string version)
    {
        var outcome = Outcome.NotRequired;
        Walk(elf, (_, ver, flagsOffset) =>
        {
            if (ver != version) return;
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(flagsOffset));
            if ((flags & VerFlgWeak) != 0) { if (outcome == Outcome.NotRequired) outcome = Outcome.AlreadyWeak; return; }
            BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(flagsOffset), (ushort)(flags | VerFlgWeak));
            outcome = Outcome.Patched;
        });
        return outcome;
    }

    static void Walk(byte[] elf, Action<string, string, int> visit)
    {
        var s = elf.AsSpan();
        if (s.Length < 64 || s[0] != 0x7f || s[1] != (byte)'E' || s[2] != (byte)'L' || s[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (s[4] != 2 || s[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF files are supported");
        var shoff = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(s[0x28..]));
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3a..]);
        var shnum = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3c..]);
        for (var i = 0; i < shnum; i++)
        {
            var sh = s[(shoff + i * shentsize)..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            var offset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]));
            var link = BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var strsh = s[(shoff + (int)link * shentsize)..];
            var strOffset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(strsh[0x18..]));
            var vn = offset;
            while (true)
            {
                var cnt = BinaryPrimitives.ReadUInt16LittleEndian(s[(vn + 2)..]);
                var file = ReadString(s, strOffset + (int)BinaryPrimitives.ReadUInt32LittleEndian(s[(vn + 4)..]));
                var aux = vn + (int)BinaryPrimitives.ReadUInt32LittleEndian(s[(vn + 8)..]);
                for (var j = 0; j < cnt; j++)
                {
                    var name = ReadString(s, strOffset + (int)BinaryPrimitives.ReadUInt32LittleEndian(s[(aux + 8)..]));
                    visit(file, name, aux + 4);
                    var next = BinaryPrimitives.ReadUInt32LittleEndian(s[(aux + 12)..]);
                    if (next == 0) break;
                    aux += (int)next;
                }
                var vnNext = BinaryPrimitives.ReadUInt32LittleEndian(s[(vn + 12)..]);
                if (vnNext == 0) break;
                vn += (int)vnNext;
            }
        }
    }

    static string ReadString(ReadOnlySpan<byte> s, int offset)
    {
        var end = s[offset..].IndexOf((byte)0);
        return Encoding.ASCII.GetString(s.Slice(offset, end));
    }
}
