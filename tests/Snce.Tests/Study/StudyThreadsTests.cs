using Snce.Cli.Commands;
using Snce.Cli.Study;

namespace Snce.Tests.Study;

public class StudyThreadsTests
{
    [Theory]
    [InlineData(1, 16, null)]      // one job keeps libtorch's default
    [InlineData(2, 16, 8)]
    [InlineData(4, 16, 4)]
    [InlineData(3, 16, 5)]
    [InlineData(32, 16, 1)]        // never zero
    public void ConcurrentJobsShareTheCores(int parallel, int cores, int? expected) =>
        Assert.Equal(expected, SelfProcess.ThreadShare(parallel, cores));

    [Fact]
    public void ThePresetsFocusCodebookIsDroppedOnlyWhenTheCodebooksLeaveItOut()
    {
        Assert.Equal(16384, StudyCommand.FocusFor(null, 16384, [1024, 16384, 65536]));
        Assert.Null(StudyCommand.FocusFor(null, 16384, [1024, 65536]));                  // then the middle codebook
        Assert.Equal(77, StudyCommand.FocusFor(77, 16384, [1024, 65536]));               // a given K is kept (and refused later)
        var config = Snce.Study.StudyConfig.Gpu with { Codebooks = [1024, 65536], FocusCodebook = StudyCommand.FocusFor(null, 16384, [1024, 65536]) };
        Assert.Equal(65536, config.Focus);
        Assert.NotEmpty(config.Runs());
    }
}
