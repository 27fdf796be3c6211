using Snce.Distributed;
using Snce.Training;
using TorchSharp;

namespace Snce.Tests.Distributed;

/// <summary>A process's decisions before it trains: launched or not, NCCL only on CUDA, which GPU, the global batch's share.</summary>
public class DistributedTrainingTests
{
    static Dictionary<string, string?> Torchrun(int rank, int world) => new()
    {
        ["RANK"] = $"{rank}", ["WORLD_SIZE"] = $"{world}", ["LOCAL_RANK"] = $"{rank}", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = "29500",
    };

    [Fact]
    public void NcclModeWithoutTorchrunIsALaunchedWorldOfOne()
    {
        var env = DistributedTraining.Resolve(new Dictionary<string, string?> { [DistributedTraining.ModeVariable] = "NCCL" });
        Assert.True(env.Launched);
        Assert.Equal((0, 1), (env.Rank, env.WorldSize));
        Assert.False(DistributedTraining.Resolve(new Dictionary<string, string?>()).Launched);
        Assert.Equal(3, DistributedTraining.Resolve(Torchrun(3, 4)).Rank);
        var e = Assert.Throws<DistributedSetupException>(() => DistributedTraining.Resolve(new Dictionary<string, string?> { [DistributedTraining.ModeVariable] = "gloo" }));
        Assert.Contains("SNCE_DISTRIBUTED='gloo'", e.Message);
    }

    [Fact]
    public void NcclIsRefusedOnTheCpu()
    {
        var two = DistributedTraining.Resolve(Torchrun(0, 2));
        var e = Assert.Throws<DistributedSetupException>(() => DistributedTraining.CheckDevice(two, DeviceType.CPU));
        Assert.Contains("WORLD_SIZE=2", e.Message);
        Assert.Contains("CUDA GPUs only", e.Message);
        Assert.Contains("CUDA GPUs only", Assert.Throws<DistributedSetupException>(() =>
            DistributedTraining.CheckDevice(DistributedEnvironment.SingleProcess with { Launched = true }, DeviceType.CPU)).Message);
        DistributedTraining.CheckDevice(two, DeviceType.CUDA);                     // fine on GPUs
        DistributedTraining.CheckDevice(DistributedEnvironment.SingleProcess, DeviceType.CPU);   // and one plain process anywhere
    }

    [Fact]
    public void ARankTakesTheOnlyVisibleGpuOrItsLocalRanks()
    {
        var rank2 = DistributedTraining.Resolve(Torchrun(2, 4));
        Assert.Equal(0, DistributedTraining.CudaDeviceFor(rank2, 1));             // the launcher's CUDA_VISIBLE_DEVICES=2
        Assert.Equal(2, DistributedTraining.CudaDeviceFor(rank2, 4));             // torchrun: all four visible
        Assert.Contains("LOCAL_RANK=2 but only 2", Assert.Throws<DistributedSetupException>(() => DistributedTraining.CudaDeviceFor(rank2, 2)).Message);
        Assert.Contains("no CUDA device", Assert.Throws<DistributedSetupException>(() => DistributedTraining.CudaDeviceFor(rank2, 0)).Message);
    }

    [Fact]
    public void TheGlobalBatchMustDivideAmongTheRanks()
    {
        Assert.Equal(16, Trainer.LocalBatchOf(64, 4));
        Assert.Equal(64, Trainer.LocalBatchOf(64, 1));
        var e = Assert.Throws<ArgumentException>(() => Trainer.LocalBatchOf(10, 4));
        Assert.Contains("--batch 10", e.Message);
        Assert.Contains("4 processes", e.Message);
        Assert.Contains("--batch 8 or 12", e.Message);
        Assert.Contains("--batch 4", Assert.Throws<ArgumentException>(() => Trainer.LocalBatchOf(3, 4)).Message);
    }

    [Fact]
    public void RendezvousTimeoutIsReadFromTheEnvironment()
    {
        Assert.Equal(TimeSpan.FromSeconds(DistributedTraining.DefaultRendezvousSeconds), DistributedTraining.RendezvousTimeout(new Dictionary<string, string?>()));
        Assert.Equal(TimeSpan.FromSeconds(42.5), DistributedTraining.RendezvousTimeout(new Dictionary<string, string?> { [DistributedTraining.RendezvousTimeoutVariable] = "42.5" }));
        Assert.Throws<DistributedSetupException>(() => DistributedTraining.RendezvousTimeout(new Dictionary<string, string?> { [DistributedTraining.RendezvousTimeoutVariable] = "-1" }));
    }
}
