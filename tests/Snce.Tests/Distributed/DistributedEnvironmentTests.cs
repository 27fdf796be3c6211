using Snce.Distributed;

namespace Snce.Tests.Distributed;

public class DistributedEnvironmentTests
{
    static Dictionary<string, string?> Torchrun(int rank = 1, int world = 4) => new()
    {
        ["RANK"] = $"{rank}", ["WORLD_SIZE"] = $"{world}", ["LOCAL_RANK"] = $"{rank}",
        ["MASTER_ADDR"] = "10.0.0.7", ["MASTER_PORT"] = "29500",
    };

    [Fact]
    public void NoWorldSizeIsOneProcess()
    {
        var env = DistributedEnvironment.Parse(new Dictionary<string, string?> { ["RANK"] = "3" });
        Assert.Equal(DistributedEnvironment.SingleProcess, env);
        Assert.False(env.Launched);
    }

    [Fact]
    public void ReadsTorchrunVariables()
    {
        var vars = Torchrun(2, 8);
        vars["LOCAL_RANK"] = "0";
        vars["LOCAL_WORLD_SIZE"] = "2";
        var env = DistributedEnvironment.Parse(vars);
        Assert.Equal(new DistributedEnvironment(2, 8, 0, 2, "10.0.0.7", 29500) { Launched = true }, env);
        Assert.Equal(8, DistributedEnvironment.Parse(Torchrun(2, 8)).LocalWorldSize);  // absent: all on this host
    }

    [Theory]
    [InlineData("RANK", null, "RANK is not set")]
    [InlineData("RANK", "x1", "RANK='x1' is not a non-negative integer")]
    [InlineData("RANK", "-1", "RANK='-1' is not a non-negative integer")]
    [InlineData("RANK", "4", "RANK=4 is not below WORLD_SIZE=4")]
    [InlineData("WORLD_SIZE", "0", "WORLD_SIZE=0 is out of range")]
    [InlineData("LOCAL_RANK", null, "LOCAL_RANK is not set")]
    [InlineData("LOCAL_WORLD_SIZE", "1", "LOCAL_RANK=1 is not below LOCAL_WORLD_SIZE=1")]
    [InlineData("MASTER_ADDR", " ", "MASTER_ADDR is not set")]
    [InlineData("MASTER_PORT", null, "MASTER_PORT is not set")]
    [InlineData("MASTER_PORT", "0", "MASTER_PORT=0 is out of range")]
    [InlineData("MASTER_PORT", "65536", "MASTER_PORT=65536 is out of range")]
    public void BadVariablesAreNamed(string name, string? value, string message)
    {
        var vars = Torchrun();
        if (value is null) vars.Remove(name); else vars[name] = value;
        var e = Assert.Throws<DistributedSetupException>(() => DistributedEnvironment.Parse(vars));
        Assert.StartsWith(message, e.Message);
        Assert.Matches("; (set|give) ", e.Message[message.Length..]);  // and says what to do
    }
}
