using Snce.Losses;
using Snce.Models;
using static TorchSharp.torch;

namespace Snce.Objectives;

/// <summary>
/// Autoregressive next-token prediction in raster order: the network reads the condition and x_0..x_{T−2}
/// and predicts x_0..x_{T−1}; every position is supervised.
/// </summary>
public sealed class NextTokenObjective(ObjectiveOptions options) : ITrainingObjective
{
    /// <inheritdoc/>
    public GeneratorKind Kind => GeneratorKind.Autoregressive;

    /// <inheritdoc/>
    public ObjectiveOutput Compute(TokenGenerator model, TokenBatch batch, ITokenLoss loss, Generator generator, bool train)
    {
        if (!model.Causal) throw new ArgumentException("the next-token objective needs the autoregressive generator");
        using var scope = NewDisposeScope();
        var t = batch.Tokens.shape[1];
        var condition = train ? ObjectiveFactory.DropConditions(model.Conditioning, batch.Condition, options.CfgDropout) : batch.Condition;
        var hidden = model.ForwardHidden(condition, batch.Tokens.narrow(1, 0, t - 1));        // [B, T, d]: row i predicts x_i
        var flat = hidden.reshape(-1, hidden.shape[^1]);
        var targets = batch.Tokens.reshape(-1);
        var output = ObjectiveFactory.Loss(model, flat, loss, ObjectiveFactory.Targets(batch, targets));
        var result = new ObjectiveOutput(output, flat, targets, null);
        MoveOut(result);
        return result;
    }

    internal static void MoveOut(ObjectiveOutput o)
    {
        o.Loss.Loss.MoveToOuterDisposeScope();
        o.Loss.HardCe.MoveToOuterDisposeScope();
        o.Loss.TargetEntropy?.MoveToOuterDisposeScope();
        o.Hidden.MoveToOuterDisposeScope();
        o.Targets.MoveToOuterDisposeScope();
        o.Mask?.MoveToOuterDisposeScope();
    }
}
