using System.Text.Json;
using Snce.Cli;
using Snce.Data;
using Snce.Data.BuiltIn;
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
        Assert.Equal("cosine, linear", MaskSchedule.Allowed);
        Assert.Equal(MaskScheduleKind.Cosine, MaskSchedule.Parse("Cosine"));
        Assert.Equal(MaskScheduleKind.Linear, MaskSchedule.Parse("LINEAR"));
        Assert.Equal("unknown mask schedule 'sqrt'; use one of cosine, linear", Assert.Throws<ArgumentException>(() => MaskSchedule.Parse("sqrt")).Message);
        foreach (var kind in Enum.GetValues<MaskScheduleKind>())          // the command line's name is the JSON name
            Assert.Equal(kind, MaskSchedule.Parse(JsonSerializer.Serialize(kind).Trim('"')));
    }

    [Fact]
    public void MaskWeightingNamesParseAsBeforeWithTheMdlmAlias()
    {
        Assert.Equal("none, elbo", ObjectiveOptions.AllowedWeightings);
        Assert.Equal(MaskWeighting.None, ObjectiveOptions.ParseWeighting("none"));
        Assert.Equal(MaskWeighting.Elbo, ObjectiveOptions.ParseWeighting("ELBO"));
        Assert.Equal(MaskWeighting.Elbo, ObjectiveOptions.ParseWeighting("mdlm"));
        Assert.Equal(MaskWeighting.Elbo, ObjectiveOptions.ParseWeighting("MDLM"));
        Assert.Equal("unknown mask weighting 'p2'; use one of none, elbo", Assert.Throws<ArgumentException>(() => ObjectiveOptions.ParseWeighting("p2")).Message);
    }

    [Fact]
    public void BestRuleNamesParseAndPrintAsBefore()
    {
        Assert.Equal("val-ce, fd", BestRules.Allowed);
        Assert.Equal(BestRule.ValCe, BestRules.Parse("VAL-CE"));
        Assert.Equal(BestRule.Fd, BestRules.Parse("fd"));
        Assert.Equal("val-ce", BestRule.ValCe.Name());
        Assert.Equal("fd", BestRule.Fd.Name());
        Assert.Equal("unknown --keep-best rule 'psnr'; use one of val-ce, fd", Assert.Throws<ArgumentException>(() => BestRules.Parse("psnr")).Message);
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
}
