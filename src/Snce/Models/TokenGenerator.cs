using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Models;

/// <summary>
/// The generator network: condition prefix + token embeddings → transformer → RMSNorm → output head.
/// Causal for <see cref="GeneratorKind.Autoregressive"/>, bidirectional for <see cref="GeneratorKind.Masked"/>.
/// It knows nothing of losses, masking schedules or sampling: it maps token sequences to logits.
/// </summary>
/// <remarks>
/// Slot layout: [prefix (P slots) | token 0 | token 1 | ...]; token j sits at the 2-D rotary position of grid cell j.
/// AR: given tokens x_0..x_{n−1}, outputs n+1 distributions, row i = p(x_i | condition, x_&lt;i) (read at the slot
/// before token i, the last prefix slot for i = 0); the objective feeds x[:, :T−1] to get all T rows.
/// Masked: given T ids (id K = [MASK]), outputs T distributions over the K codes, one per token slot.
/// <see cref="ForwardHidden"/> stops before the head so a fused loss can take hidden states and <see cref="OutputWeight"/>.
/// Modelled on LlamaGen's gpt.py (https://github.com/FoundationVision/LlamaGen) and MaskGIT's bidirectional transformer.
/// </remarks>
public sealed class TokenGenerator : nn.Module
{
    // Named as their state-dict keys.
    readonly nn.Module cond;
    readonly TokenEmbedding tok_embeddings;
    readonly ModuleList<TransformerBlock> layers;
    readonly RmsNorm norm;
    readonly Linear output;
    readonly Rotary2d rotary;

    /// <summary>Builds a generator (fp32) on <paramref name="device"/>, class-, text-, source- or instruction-conditioned as <paramref name="config"/> says.</summary>
    public TokenGenerator(GeneratorConfig config, Device? device = null) : this(config, CreateConditioning(config, device), device) { }

    static nn.Module CreateConditioning(GeneratorConfig config, Device? device)
    {
        config.Validate();
        var (dim, std) = (config.Transformer.Dim, config.Transformer.InitStd);
        return (config.Source, config.Text) switch
        {
            ({ } source, { } text) => new InstructionConditioning(text, config.CodebookSize, source.Tokens, dim, std, device),
            ({ } source, null) => new SourceTokenConditioning(config.NumClasses, config.CodebookSize, source.Tokens, dim, std, device),
            (null, { } text) => new TextConditioning(text, dim, std, device),
            _ => new ClassConditioning(config.NumClasses, dim, std, device),
        };
    }

    /// <summary>Builds a generator with a given conditioning module (it must implement <see cref="IConditioning"/>).</summary>
    public TokenGenerator(GeneratorConfig config, nn.Module conditioning, Device? device = null) : base(nameof(TokenGenerator))
    {
        config.Validate();
        if (conditioning is not IConditioning c) throw new ArgumentException($"the conditioning module {conditioning.GetType().Name} does not implement IConditioning");
        Config = config;
        var t = config.Transformer;
        cond = conditioning;
        tok_embeddings = new TokenEmbedding(config.InputVocabulary, t.Dim, t.InitStd, device);
        layers = new ModuleList<TransformerBlock>(Enumerable.Range(0, t.Layers).Select(_ => new TransformerBlock(t, device)).ToArray());
        norm = new RmsNorm(t.Dim, t.NormEps, device);
        output = nn.Linear(t.Dim, config.CodebookSize, hasBias: false, device: device);
        using (no_grad()) nn.init.zeros_(output.weight);   // LlamaGen: the head starts at zero, so the first loss is exactly ln K
        rotary = new Rotary2d(c.PrefixLength, config.GridHeight, config.GridWidth, t.HeadDim, t.RopeBase);
        RegisterComponents();
    }

    /// <summary>
    /// Sets the first K rows of the input token embeddings to <see cref="CodebookEmbeddings.Project"/> of <paramref name="codebook"/>
    /// [K, D] (the masked network's [MASK] row keeps its random init). Called on a fresh network before training.
    /// </summary>
    public void InitTokenEmbeddingsFromCodebook(Tensor codebook, long seed)
    {
        if (codebook.dim() != 2 || codebook.shape[0] != Config.CodebookSize)
            throw new ArgumentException($"the codebook is [{string.Join(", ", codebook.shape)}], the generator predicts K = {Config.CodebookSize} codes");
        var w = tok_embeddings.Weight;
        using var e = CodebookEmbeddings.Project(codebook, w.shape[1], Config.Transformer.InitStd, seed);
        using (no_grad()) w.narrow(0, 0, Config.CodebookSize).copy_(e);
    }

    /// <summary>The configuration the network was built from.</summary>
    public GeneratorConfig Config { get; }

    /// <summary>How conditions become prefix embeddings (and what the null condition is).</summary>
    public IConditioning Conditioning => (IConditioning)cond;

    /// <summary>True for the causal (AR) network.</summary>
    public bool Causal => Config.Kind == GeneratorKind.Autoregressive;

    /// <summary>The output head's weight [K, d], for fused losses that take hidden states.</summary>
    public Parameter OutputWeight => output.weight;

    /// <summary>The output head's bias [K], or null (the head has none): what a fused loss adds after <see cref="OutputWeight"/>.</summary>
    public Parameter? OutputBias => output.bias;

    /// <summary>dtype of the weights (fp32, or bf16 after <c>bfloat16()</c>).</summary>
    public ScalarType WeightDtype => tok_embeddings.Weight.dtype;

    /// <summary>Device of the weights.</summary>
    public Device Device => tok_embeddings.Weight.device;

    /// <summary>
    /// Hidden states after the final norm, one row per predicted token: AR tokens [B, n] (n ≤ T) → [B, n+1, d];
    /// masked ids [B, T] → [B, T, d].
    /// </summary>
    public Tensor ForwardHidden(Tensor condition, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var n = tokens.shape[1];
        if (Causal ? n > Config.SequenceLength : n != Config.SequenceLength)
            throw new ArgumentException($"{Config.Kind.Name()} generator got {n} tokens per sequence; it takes {(Causal ? "at most " : "")}{Config.SequenceLength}");
        var prefix = Conditioning.Embed(condition).to_type(WeightDtype);                      // [B, P, d]
        var x = cat([prefix, tok_embeddings.forward(tokens)], 1);                                // [B, P+n, d]
        var keys = KeyMask(condition, x.shape[1]);                                               // [B, P+n] or null
        for (var i = 0; i < layers.Count; i++) x = layers[i].Forward(x, rotary, Causal, keyMask: keys);
        var p = Conditioning.PrefixLength;
        var rows = Causal ? x.narrow(1, p - 1, n + 1) : x.narrow(1, p, n);
        return norm.forward(rows).MoveToOuterDisposeScope();
    }

    /// <summary>Which of <paramref name="slots"/> slots may be attended to [B, slots] (padded prefix slots may not), or null when all may.</summary>
    Tensor? KeyMask(Tensor condition, long slots)
    {
        if (Conditioning.PrefixMask(condition) is not { } prefix) return null;
        using var scope = NewDisposeScope();
        var rest = ones(prefix.shape[0], slots - prefix.shape[1], dtype: ScalarType.Bool, device: prefix.device);
        return cat([prefix, rest], 1).MoveToOuterDisposeScope();
    }

    /// <summary>Hidden states [..., d] → logits [..., K].</summary>
    public Tensor Logits(Tensor hidden) => output.forward(hidden);

    /// <summary><see cref="ForwardHidden"/> followed by the head: logits [B, n+1, K] (AR) or [B, T, K] (masked).</summary>
    public Tensor Forward(Tensor condition, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        return Logits(ForwardHidden(condition, tokens)).MoveToOuterDisposeScope();
    }

    /// <summary>An empty KV cache for incremental decoding of <paramref name="batch"/> sequences.</summary>
    public KvCache NewCache(long batch) =>
        new(Config.Transformer.Layers, batch, Config.Transformer.Heads, rotary.Slots, Config.Transformer.HeadDim, WeightDtype, Device);

    /// <summary>
    /// Incremental AR decoding: appends tokens [B, n] to <paramref name="cache"/> (the first call also writes the
    /// condition prefix; n may be 0) and returns the logits [B, K] of the token that follows.
    /// </summary>
    public Tensor Decode(Tensor? condition, Tensor tokens, KvCache cache)
    {
        if (!Causal) throw new InvalidOperationException("KV-cache decoding is for the autoregressive generator");
        using var scope = NewDisposeScope();
        Tensor x = tok_embeddings.forward(tokens);
        if (cache.Length == 0)
        {
            if (condition is null) throw new ArgumentException("the first decoding call needs the condition");
            x = cat([Conditioning.Embed(condition).to_type(WeightDtype), x], 1);
            cache.KeyMask = KeyMask(condition, cache.MaxSlots)?.DetachFromDisposeScope();
        }
        var start = cache.Length;
        for (var i = 0; i < layers.Count; i++) x = layers[i].Forward(x, rotary, causal: true, start, cache, i);
        cache.Advance(x.shape[1]);
        return Logits(norm.forward(x.select(1, -1))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Parameters with their optimizer group: weight decay for the linear layers' matrices; none for norms,
    /// embeddings (token and class) and biases.
    /// </summary>
    public IReadOnlyList<(string Name, Parameter Parameter, bool Decay)> ParameterGroups()
    {
        var noDecay = new HashSet<IntPtr>();
        foreach (var (_, m) in named_modules())
            if (m is RmsNorm or TokenEmbedding)
                foreach (var (_, p) in m.named_parameters()) noDecay.Add(p.Handle);
        return named_parameters()
            .Select(np => (np.name, np.parameter, Decay: np.parameter.dim() >= 2 && !noDecay.Contains(np.parameter.Handle)))
            .ToList();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            cond.Dispose(); tok_embeddings.Dispose(); layers.Dispose(); norm.Dispose(); output.Dispose();
            rotary.Dispose();
        }
        base.Dispose(disposing);
    }
}
