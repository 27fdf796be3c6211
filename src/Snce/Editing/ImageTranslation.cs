using Snce.Models;
using Snce.Sampling;
using Snce.Tokenizer;
using static TorchSharp.torch;

namespace Snce.Editing;

/// <summary>
/// What a translation produced, all on the CPU: <paramref name="SourceTokens"/> ids [N, T] of the source images,
/// <paramref name="Tokens"/> ids [N, T] generated from them, and <paramref name="Images"/> uint8 [N, C, S, S] decoded from those.
/// </summary>
public sealed record TranslationResult(Tensor SourceTokens, Tensor Tokens, Tensor Images) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        SourceTokens.Dispose(); Tokens.Dispose(); Images.Dispose();
    }
}

/// <summary>
/// Image-to-image generation with a paired run (a generator with <see cref="GeneratorConfig.Source"/>): tokenize the source,
/// condition on its tokens (<see cref="SourceTokenConditioning"/>, the null class; with an instruction, <see cref="InstructionConditioning"/>), sample the target's tokens with the
/// generator's own sampler (<see cref="GeneratorSampler.Sample"/>), decode.
/// </summary>
public static class ImageTranslation
{
    /// <summary>
    /// Translates <paramref name="sources"/> uint8 [N, C, S, S] (the tokenizer's channels and side): one draw per row (repeat a
    /// row for several). Deterministic given <paramref name="generator"/>.
    /// </summary>
    /// <param name="model">a paired generator.</param>
    /// <param name="tokenizer">its tokenizer.</param>
    /// <param name="sources">uint8 [N, C, S, S].</param>
    /// <param name="options">sampling options.</param>
    /// <param name="generator">the randomness.</param>
    /// <param name="instructions">
    /// For a generator trained with instructions (<see cref="GeneratorConfig.Text"/> set): each row's instruction as packed text conditions
    /// [N, L + 1, E + 1] (<see cref="Text.TextConditions.Of(IReadOnlyList{Text.TextEmbedding}, int, Device)"/>); required there, refused otherwise.
    /// </param>
    public static TranslationResult Run(TokenGenerator model, VqTokenizer tokenizer, Tensor sources, GeneratorSamplingOptions options, Generator generator,
        Tensor? instructions = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var source = Tokenize(model, tokenizer, sources, options.BatchSize);
        var tokens = GeneratorSampler.Sample(model, Conditions(model, source, instructions), options, generator);
        return new TranslationResult(source.cpu().MoveToOuterDisposeScope(), tokens.cpu().MoveToOuterDisposeScope(),
            ImageInpainting.Decode(tokenizer, tokens, options.BatchSize).cpu().MoveToOuterDisposeScope());
    }

    /// <summary>Source images uint8 [N, C, S, S] → their tokens [N, T] on the model's device; throws naming the problem when the pair or the images do not fit.</summary>
    public static Tensor Tokenize(TokenGenerator model, VqTokenizer tokenizer, Tensor sources, int batchSize)
    {
        RequirePaired(model);
        ImageInpainting.CheckPair(model, tokenizer);
        var tc = tokenizer.Config;
        if (sources.dtype != ScalarType.Byte || sources.dim() != 4 || sources.shape[1] != tc.Channels || sources.shape[2] != tc.ImageSize || sources.shape[3] != tc.ImageSize)
            throw new ArgumentException($"this tokenizer takes uint8 source images [N, {tc.Channels}, {tc.ImageSize}, {tc.ImageSize}], got {sources.dtype} [{string.Join(", ", sources.shape)}]");
        using var noGrad = no_grad();
        return ImageInpainting.Tokenize(tokenizer, sources.to(model.Device), batchSize);
    }

    /// <summary>
    /// The conditions of source tokens [N, T]: the null class, then the source ids → int64 [N, 1 + T] on the model's device; for a generator
    /// trained with instructions, [instruction | null class | source ids] (<see cref="InstructionConditioning.Pack"/>) with
    /// <paramref name="instructions"/> [N, L + 1, E + 1]. Throws naming the fix when instructions are missing or not taken.
    /// </summary>
    public static Tensor Conditions(TokenGenerator model, Tensor sourceTokens, Tensor? instructions = null)
    {
        RequirePaired(model);
        if (model.Config.Text is null && instructions is not null)
            throw new ArgumentException("this paired generator has no text conditioning (it was trained without instructions), so it takes no instruction; " +
                "leave out --prompt, or train one on instructions ('snce tokenize --pairs ... --text', then 'snce train ... --text')");
        if (model.Config.Text is not null && instructions is null)
            throw new ArgumentException("this paired generator was trained with instructions; give one (snce edit --prompt \"make the skin tone dark\")");
        using var scope = NewDisposeScope();
        var ids = sourceTokens.to(model.Device);
        var nullClass = full(ids.shape[0], -1L, device: model.Device);
        if (model.Conditioning is SourceTokenConditioning plain) return plain.Condition(nullClass, ids).MoveToOuterDisposeScope();
        var source = SourceTokenConditioning.Pack(nullClass, ids);
        if (instructions!.shape[0] != ids.shape[0])
            throw new ArgumentException($"{instructions.shape[0]} instructions for {ids.shape[0]} sources; give one per source");
        return InstructionConditioning.Pack(instructions.to(model.Device), source).MoveToOuterDisposeScope();
    }

    /// <summary>Throws when <paramref name="model"/> is not conditioned on a source image.</summary>
    public static void RequirePaired(TokenGenerator model)
    {
        if (model.Config.Source is null)
            throw new ArgumentException($"this generator is {model.Config.Conditioning}-conditional, not conditioned on a source image; train one on paired shards ('snce tokenize --pairs', then 'snce train')");
    }
}
