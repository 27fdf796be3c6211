using System.Diagnostics;
using Snce.Data;
using Snce.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Tokenizer;

/// <summary>
/// Trains a <see cref="VqTokenizer"/>: AdamW on reconstruction loss + quantizer loss, one dispose scope per step,
/// everything on the model's device (the images are copied there once; batches are drawn there; the host reads
/// the device only every <see cref="TokenizerTrainOptions.LogEvery"/> steps). Checkpoints every
/// <see cref="TokenizerTrainOptions.CheckpointEvery"/> steps and at the end; a NaN/Inf loss stops training with a
/// <see cref="TrainingDivergedException"/> and leaves the last good checkpoint in place.
/// </summary>
public sealed class TokenizerTrainer : IDisposable
{
    readonly AdamW optimizer;
    double trainSeconds;
    long? lastCheckpointStep;

    TokenizerTrainer(VqTokenizer model, TokenizerTrainOptions options, long step, double trainSeconds)
    {
        Model = model;
        Options = options.Validate();
        Step = step;
        this.trainSeconds = trainSeconds;
        optimizer = optim.AdamW(model.parameters(), options.LearningRate, options.Beta1, options.Beta2, 1e-8, options.WeightDecay);
    }

    /// <summary>The tokenizer being trained (in place).</summary>
    public VqTokenizer Model { get; }
    /// <summary>The validated options of this run (a resumed run: the checkpoint's, with any adjustment given to <see cref="Resume"/>).</summary>
    public TokenizerTrainOptions Options { get; private set; }
    /// <summary>Optimizer steps done so far.</summary>
    public long Step { get; private set; }
    /// <summary>Where the model's weights live (the codebook's device).</summary>
    public Device Device => Model.Quantizer.Codebook.device;


    /// <summary>A fresh model from <paramref name="config"/>, initialized from <see cref="TokenizerTrainOptions.Seed"/>, on <paramref name="device"/>.</summary>
    public static TokenizerTrainer Create(TokenizerConfig config, TokenizerTrainOptions options, Device device)
    {
        options.Validate();
        var model = DeviceRandom.WithSeededDefault(options.Seed, CPU, () => new VqTokenizer(config));   // the caller's CPU stream is given back
        model.to(device);
        return new TokenizerTrainer(model, options, 0, 0);
    }

    /// <summary>Continues from a checkpoint folder: weights, optimizer moments, step and options (with <paramref name="adjust"/> applied, e.g. a new total step count).</summary>
    public static TokenizerTrainer Resume(string dir, Device device, Func<TokenizerTrainOptions, TokenizerTrainOptions>? adjust = null)
    {
        var state = TokenizerCheckpoint.LoadState(dir)
            ?? throw new InvalidDataException($"'{dir}' has no {TokenizerCheckpoint.StateFile}: it is not a training checkpoint and cannot be resumed");
        var model = DeviceRandom.WithSeededDefault(state.Options.Seed, CPU, () => TokenizerCheckpoint.Load(dir, device)); // the throwaway init leaves the caller's CPU stream alone
        try
        {
            var options = adjust is null ? state.Options : adjust(state.Options);
            var trainer = new TokenizerTrainer(model, options, state.Step, state.TrainSeconds) { lastCheckpointStep = state.Step };
            TokenizerCheckpoint.LoadOptimizer(dir, model, trainer.optimizer);
            return trainer;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Trains on <paramref name="images"/> (uint8 [M, C, H, W], the training split) from <see cref="Step"/> + 1 up to
    /// <see cref="TokenizerTrainOptions.Steps"/>, or until the invocation's <paramref name="limits"/> (the generator
    /// trainer's <see cref="RunLimits"/>: a global step, a wall time of this call) stop it first. Writes checkpoints to
    /// <paramref name="checkpointDir"/> when given.
    /// </summary>
    public TokenizerTrainSummary Train(Tensor images, string dataName, string? checkpointDir = null,
        Action<TokenizerProgress>? onProgress = null, CancellationToken cancel = default, RunLimits? limits = null)
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4)
            throw new ArgumentException($"expected uint8 images [M, C, H, W], got {images.dtype} [{string.Join(", ", images.shape)}]");
        if (images.shape[0] == 0) throw new ArgumentException("the training split has no images");
        var o = Options;
        var device = Device;
        var first = Step + 1;
        var end = Math.Min(o.Steps, limits?.MaxSteps ?? long.MaxValue);
        var clock = Stopwatch.StartNew();
        var window = Model.Quantizer.UsageWindow((long)o.BatchSize * Model.TokensPerImage);
        TokenizerProgress? last = null;
        var stop = StopReason.Completed;
        Model.train();
        using (var persistent = NewDisposeScope())
        {
            var data = images.to(device);
            var sums = zeros(4, device: device);                           // loss, reconstruction, quantizer, MSE on [0, 1]
            var firstBad = full(1, long.MaxValue, dtype: ScalarType.Int64, device: device);
            var (lastLogStep, lastLogTime) = (Step, 0.0);
            for (var step = first; step <= end; step++)
            {
                var lr = o.LearningRateAt(step);
                // The step's draws (batch, the EMA quantizer's restart picks and noise) are made on the device from its default
                // generator seeded from (seed, step): nothing random crosses from the host, and a resumed run, or one
                // interleaved with another, draws what an uninterrupted run alone does.
                using (var scope = NewDisposeScope())
                using (DeviceRandom.SeededDefault(DeviceRandom.StepSeed(o.Seed, step), device))
                {
                    var pick = randint(0, data.shape[0], [o.BatchSize], dtype: ScalarType.Int64, device: device);
                    var x = ImageDataset.ToModelRange(data.index_select(0, pick));
                    var output = Model.forward(x, new TrainingStep(step));
                    var reconstruction = o.Loss == ReconstructionLossKind.L2
                        ? nn.functional.mse_loss(output.Reconstruction, x)
                        : nn.functional.l1_loss(output.Reconstruction, x);
                    var loss = reconstruction + output.QuantizerLoss;
                    foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                    using (no_grad())
                    {
                        var mse01 = nn.functional.mse_loss(output.Reconstruction.detach().clamp(-1, 1), x).div(4); // [−1, 1] → [0, 1]
                        sums.add_(stack([loss.detach(), reconstruction.detach(), output.QuantizerLoss.detach(), mse01]));
                        firstBad.masked_fill_(loss.detach().isfinite().logical_not().view(1).logical_and(firstBad.eq(long.MaxValue)), step);
                    }
                }
                Step = step;
                var elapsed = clock.Elapsed.TotalSeconds;
                if (step == end && end < o.Steps) stop = StopReason.MaxSteps;                      // first, as the generator trainer checks
                else if (cancel.IsCancellationRequested) stop = StopReason.Cancelled;
                else if (limits?.TimeLimit is { } max && clock.Elapsed >= max) stop = StopReason.TimeLimit;
                var checkpointDue = checkpointDir is not null &&
                    (step == end || stop != StopReason.Completed || (o.CheckpointEvery > 0 && step % o.CheckpointEvery == 0));
                if (step % o.LogEvery == 0 || step == end || checkpointDue || stop != StopReason.Completed)
                {
                    var bad = firstBad.item<long>();
                    if (bad != long.MaxValue) throw new TrainingDivergedException(bad, lastCheckpointStep);
                    var n = step - lastLogStep;
                    var s = sums.cpu().data<float>().ToArray();
                    sums.zero_();
                    last = new TokenizerProgress
                    {
                        Step = step, TotalSteps = o.Steps,
                        Loss = s[0] / n, ReconstructionLoss = s[1] / n, QuantizerLoss = s[2] / n,
                        Psnr = 10 * Math.Log10(1 / Math.Max(s[3] / n, 1e-10)),
                        Utilization = Model.Quantizer.RecentUtilization(step, window).item<float>(), UsageWindow = window,
                        LearningRate = lr,
                        ImagesPerSecond = n * o.BatchSize / Math.Max(1e-9, elapsed - lastLogTime),
                        ElapsedSeconds = elapsed,
                    };
                    (lastLogStep, lastLogTime) = (step, elapsed);
                    onProgress?.Invoke(last);
                }
                if (checkpointDue) SaveCheckpoint(checkpointDir!, dataName, last, trainSeconds + clock.Elapsed.TotalSeconds);
                if (stop != StopReason.Completed) break;
            }
        }
        var seconds = clock.Elapsed.TotalSeconds;
        trainSeconds += seconds;
        Model.eval();
        var done = Step - first + 1;
        return new TokenizerTrainSummary(first, Step, stop, seconds, done * o.BatchSize / Math.Max(1e-9, seconds), last);
    }

    /// <summary>Writes model, optimizer and training state to <paramref name="dir"/>.</summary>
    public void SaveCheckpoint(string dir, string dataName, TokenizerProgress? last = null, double? totalSeconds = null)
    {
        TokenizerCheckpoint.Save(dir, Model, optimizer, new TokenizerTrainingState
        {
            Step = Step, Options = Options, Data = dataName, Last = last, TrainSeconds = totalSeconds ?? trainSeconds,
        });
        lastCheckpointStep = Step;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        optimizer.Dispose();
        Model.Dispose();
        IndexBackpropFunction.ReleaseGradients();
    }
}
