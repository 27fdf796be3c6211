using System.CommandLine;
using Snce.Data;
using Snce.Tokenizer;

namespace Snce.Cli.Commands;

/// <summary><c>snce tokenizer train|eval</c>: train a VQ tokenizer, measure it. (<c>snce tokenize</c> applies one to a data set.)</summary>
public static class TokenizerCommand
{
    public static Command Create()
    {
        var cmd = new Command("tokenizer", "Train a VQ image tokenizer (IBQ or EMA codebook, K up to 262,144) and evaluate its reconstructions and code usage.");
        cmd.Subcommands.Add(TokenizerTrainCommand.Create());
        cmd.Subcommands.Add(TokenizerEvalCommand.Create());
        return cmd;
    }

    /// <summary>
    /// Loads <paramref name="nameOrDir"/> shaped for <paramref name="config"/>: --size and --channels default to the
    /// tokenizer's image size and channels. Call after the device is resolved (libtorch loaded).
    /// </summary>
    internal static ImageDataset LoadDataFor(DataOptionsCli cli, ParseResult parse, string nameOrDir, TokenizerConfig config)
    {
        var options = cli.ToOptions(parse);
        options = options with { Size = options.Size ?? config.ImageSize, Channels = options.Channels ?? config.Channels };
        ImageDataset data;
        using (var progress = new DataProgressBar()) data = DataSets.Load(nameOrDir, options, progress: progress);
        DataOptionsCli.PrintNotices(data);
        return data;
    }

    /// <summary>Rows of <paramref name="originals"/> above the matching rows of <paramref name="reconstructions"/> (uint8 [N, C, H, W] each) → [2N, C, H, W] for a grid of <paramref name="columns"/>.</summary>
    internal static TorchSharp.torch.Tensor Interleave(TorchSharp.torch.Tensor originals, TorchSharp.torch.Tensor reconstructions, int columns)
    {
        var rows = new List<TorchSharp.torch.Tensor>();
        for (long i = 0; i < originals.shape[0]; i += columns)
        {
            var len = Math.Min(columns, originals.shape[0] - i);
            rows.Add(originals.narrow(0, i, len));
            rows.Add(reconstructions.narrow(0, i, len));
        }
        return TorchSharp.torch.cat(rows, 0);
    }

    internal static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / (double)(1L << 10):F1} KiB",
        _ => $"{bytes} B",
    };
}
