using Snce.Data;
using Snce.Tests.Support;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Tests.Tokenizer;

/// <summary>Small configs and data for tokenizer tests (fast on two shared CPU cores).</summary>
static class TokenizerTestModels
{
    /// <summary>8 base channels, K = 64, D = 8, 28 px gray → 8×8 tokens.</summary>
    public static TokenizerConfig Micro(QuantizerKind kind = QuantizerKind.Ibq, string metric = "l2") =>
        TokenizerPresets.Tiny with
        {
            ImageSize = 28, Channels = 1, BaseChannels = 8, NormGroups = 4, CodeDim = 8, CodebookSize = 64, Quantizer = kind, Metric = metric,
        };

    public static TokenizerTrainOptions FewSteps(int steps, int batch = 4) =>
        new() { Steps = steps, BatchSize = batch, LearningRate = 2e-3, WarmupSteps = 1, LogEvery = 1, CheckpointEvery = 0, Seed = 5 };

    /// <summary>The MNIST sample's training images, uint8 [208, 1, 28, 28].</summary>
    public static Tensor TrainImages()
    {
        using var data = MnistSample.Load();
        using var rows = data.IndicesOf(ImageDataset.TrainSplit);
        return data.Images.index_select(0, rows);
    }

    public static Dictionary<string, Tensor> Snapshot(VqTokenizer model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
}
