using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.Cli;
using Snce.Data;
using Snce.Data.BuiltIn;
using Snce.Models;
using Snce.Objectives;
using Snce.Training;

namespace Snce.Tests;

/// <summary>
/// The parsers and namers that now go through <see cref="EnumNames{T}"/> instead of their own switches: they accept,
/// print and refuse exactly what the hand-written versions did (the old constants and messages are the references here).
/// </summary>
public sealed class EnumNamesTests
{
    [Fact]
    public void MaskScheduleNamesParseAndPrintAsBefore()
    {
        Assert.Equal("cosine, linear", EnumNames<MaskScheduleKind>.Allowed);
        Assert.Equal(MaskScheduleKind.Cosine, EnumNames<MaskScheduleKind>.Parse("Cosine"));
        Assert.Equal(MaskScheduleKind.Linear, EnumNames<MaskScheduleKind>.Parse("LINEAR"));
        Assert.Equal("unknown mask schedule 'sqrt'; use one of cosine, linear", Assert.Throws<ArgumentException>(() => EnumNames<MaskScheduleKind>.Parse("sqrt")).Message);
        foreach (var kind in Enum.GetValues<MaskScheduleKind>())          // the command line's name is the JSON name
            Assert.Equal(kind, EnumNames<MaskScheduleKind>.Parse(JsonSerializer.Serialize(kind).Trim('"')));
    }

    [Fact]
    public void MaskWeightingNamesParseAsBeforeWithTheMdlmAlias()
    {
        Assert.Equal("none, elbo", EnumNames<MaskWeighting>.Allowed);
        Assert.Equal(MaskWeighting.None, ObjectiveOptions.ParseWeighting("none"));
        Assert.Equal(MaskWeighting.Elbo, ObjectiveOptions.ParseWeighting("ELBO"));
        Assert.Equal(MaskWeighting.Elbo, ObjectiveOptions.ParseWeighting("mdlm"));
        Assert.Equal(MaskWeighting.Elbo, ObjectiveOptions.ParseWeighting("MDLM"));
        Assert.Equal("unknown mask weighting 'p2'; use one of none, elbo", Assert.Throws<ArgumentException>(() => ObjectiveOptions.ParseWeighting("p2")).Message);
    }

    [Fact]
    public void BestRuleNamesParseAndPrintAsBefore()
    {
        Assert.Equal("val-ce, fd", EnumNames<BestRule>.Allowed);
        Assert.Equal(BestRule.ValCe, EnumNames<BestRule>.Parse("VAL-CE"));
        Assert.Equal(BestRule.Fd, EnumNames<BestRule>.Parse("fd"));
        Assert.Equal("val-ce", BestRule.ValCe.Name());
        Assert.Equal("fd", BestRule.Fd.Name());
        Assert.Equal("unknown --keep-best rule 'psnr'; use one of val-ce, fd", Assert.Throws<ArgumentException>(() => EnumNames<BestRule>.Parse("psnr")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ((BestRule)7).Name());
    }

    [Fact]
    public void EmojiVendorNamesAreTheLowerCaseMemberNamesAndNumbersAreRefused()
    {
        foreach (var v in Enum.GetValues<EmojiVendor>())
        {
            var name = v.ToString().ToLowerInvariant();                        // how every caller spelled it before
            Assert.Equal(name, EnumNames<EmojiVendor>.Name(v));
            Assert.Equal(v, DataOptionsCli.ParseVendor(v.ToString().ToUpperInvariant()));
            Assert.Equal(v, ((EmojiDataSet)BuiltInDataSets.Resolve($"emoji-{name}", null)).Vendor);
            Assert.Equal($"snce data fetch emoji{(v == EmojiVendor.Twitter ? "" : $" --vendor {name}")}", DataSets.FetchCommand(BuiltInDataSets.Emoji(v), null));
        }
        Assert.Null(DataOptionsCli.ParseVendor(null));
        Assert.Equal("unknown emoji vendor 'noto'; use twitter, google or apple", Assert.Throws<ArgumentException>(() => DataOptionsCli.ParseVendor("noto")).Message);
        // Enum.TryParse took numbers: "--vendor 1" was google and "emoji-2" had to be guarded against; names only now.
        Assert.Throws<ArgumentException>(() => DataOptionsCli.ParseVendor("1"));
        Assert.Throws<ArgumentException>(() => BuiltInDataSets.Resolve("emoji-2", null));
    }

    [Fact]
    public void GeneratorNamesParseAndPrintAsBeforeWithTheMaskedAlias()
    {
        Assert.Equal("ar, mask", EnumNames<GeneratorKind>.Allowed);                       // the old GeneratorKinds.Allowed constant
        Assert.Equal("ar", GeneratorKind.Autoregressive.Name());
        Assert.Equal("mask", GeneratorKind.Masked.Name());
        Assert.Equal(GeneratorKind.Autoregressive, GeneratorKinds.Parse("AR"));
        Assert.Equal(GeneratorKind.Masked, GeneratorKinds.Parse("mask"));
        Assert.Equal(GeneratorKind.Masked, GeneratorKinds.Parse("Masked"));
        Assert.Equal("unknown generator 'diffusion'; use one of ar, mask", Assert.Throws<ArgumentException>(() => GeneratorKinds.Parse("diffusion")).Message);
    }

    [Fact]
    public void EveryNamedEnumSaysWhatItsValuesAreCalled()
    {
        // Parse's error names the enum's [Description]; an enum without one would fail only on a bad name, so check them all here.
        var named = typeof(EnumNames<>).Assembly.GetTypes()
            .Where(t => t.IsEnum && t.GetFields(BindingFlags.Public | BindingFlags.Static).Any(f => f.IsDefined(typeof(JsonStringEnumMemberNameAttribute))))
            .ToList();
        Assert.Contains(typeof(Snce.Losses.LossKind), named);
        Assert.Contains(typeof(EmojiVendor), named);
        foreach (var t in named)
            Assert.False(string.IsNullOrWhiteSpace(t.GetCustomAttribute<DescriptionAttribute>()?.Description), $"{t.FullName} has no [Description]");
    }
}
