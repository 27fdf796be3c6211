using System.CommandLine;
using System.Text.Json;
using Snce.IO;
using Snce.Losses;
using static TorchSharp.torch;

namespace Snce.Cli.Commands;

/// <summary>
/// <c>snce loss</c>: evaluates one loss on arrays from .npy files and writes the loss, its gradient w.r.t. the
/// logits and the target distribution, so any other implementation (PyTorch, NumPy) can be checked against Snce.
/// </summary>
public static class LossCommand
{
    /// <summary>What info.json holds.</summary>
    public sealed record LossInfo(
        string LossName, string Metric, string Anchor, double Loss, double HardCe, double? TargetEntropy, double? Kl,
        double? Tau, int? TopK, double? Epsilon, PerplexityStats Perplexity, TauCalibrationResult? Calibration,
        long N, long K, string Dtype, string Device);

    /// <summary>Row-wise perplexity 2^H (H in bits) of the written targets: mean and spread.</summary>
    public sealed record PerplexityStats(double Mean, double Std, double Min, double Max);

    public static Command Create()
    {
        var device = new DeviceOptions();
        var logits = new Option<string>("--logits") { Description = "Logits [N, K], float32 or float64 .npy.", Required = true, HelpName = "L.npy" };
        var codebook = new Option<string>("--codebook") { Description = "Codebook [K, D], float32 or float64 .npy.", Required = true, HelpName = "C.npy" };
        var latents = new Option<string?>("--latents") { Description = "Latents [N, D] (float32/float64): latent-anchored targets; the tokens are their quantization by --metric.", HelpName = "Z.npy" };
        var tokens = new Option<string?>("--tokens") { Description = "Token ids [N] (or 2-D, flattened row-major), int32/int64: code-anchored targets.", HelpName = "T.npy" };
        var loss = new Option<string>("--loss") { Description = $"{Request.AllowedKinds}.", DefaultValueFactory = _ => LossKind.Snce.Name(), HelpName = "NAME" };
        var metric = new Option<string>("--metric") { Description = $"The tokenizer's dissimilarity: {Metric.Allowed}.", DefaultValueFactory = _ => "l2", HelpName = "l2|dot|cosine" };
        var tau = new Option<double?>("--tau") { Description = "SNCE temperature τ > 0 (or give --perplexity).", HelpName = "X" };
        var perplexity = new Option<double?>("--perplexity") { Description = "Calibrate τ so that the mean perplexity 2^H(q) over the rows' anchors is P (1 < P < K, or < k with --top-k). Label smoothing: match ε to SNCE's mean off-target mass at P over these rows.", HelpName = "P" };
        var topK = new Option<int?>("--top-k") { Description = "Truncate SNCE targets to the k nearest codes, renormalized (1 ≤ k ≤ K).", HelpName = "k" };
        var epsilon = new Option<double?>("--epsilon") { Description = $"Label smoothing: mass ε in [0, 1) moved off the true token, ε/(K−1) on each other code (default {LossSpec.DefaultEpsilon}).", HelpName = "E" };
        var output = new Option<string>("--out") { Description = "Folder for loss.npy, grad_logits.npy, targets.npy and info.json.", Required = true, HelpName = "DIR" };

        var cmd = new Command("loss",
            "Evaluate a loss (snce, ce, label-smoothing) on .npy arrays; write the mean loss, its gradient w.r.t. the logits, the targets and info.json, to cross-check other implementations.");
        foreach (var o in new Option[] { logits, codebook, latents, tokens, loss, metric, tau, perplexity, topK, epsilon, output }) cmd.Options.Add(o);
        device.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var request = new Request(
                parse.GetValue(logits)!, parse.GetValue(codebook)!, parse.GetValue(latents), parse.GetValue(tokens),
                parse.GetValue(loss)!, parse.GetValue(metric)!, parse.GetValue(tau), parse.GetValue(perplexity),
                parse.GetValue(topK), parse.GetValue(epsilon), parse.GetValue(output)!);
            var spec = request.Validate();
            var info = Run(request, spec, device.Resolve(parse));
            Console.WriteLine(
                $"{info.LossName} loss {info.Loss:G10} (hard CE {info.HardCe:G6}" +
                (info.Tau is { } t ? $", τ = {t:G6}" : "") +
                $", target perplexity {info.Perplexity.Mean:G4} ± {info.Perplexity.Std:G3}) over N = {info.N}, K = {info.K}; " +
                $"wrote loss.npy, grad_logits.npy, targets.npy, info.json to {request.Out}");
            return 0;
        });
        return cmd;
    }

    sealed record Request(
        string Logits, string Codebook, string? Latents, string? Tokens, string Loss, string Metric,
        double? Tau, double? Perplexity, int? TopK, double? Epsilon, string Out)
    {
        /// <summary>The losses this verb evaluates: those with dense targets and no randomness.</summary>
        public static readonly LossKind[] Kinds = [LossKind.Snce, LossKind.CrossEntropy, LossKind.LabelSmoothing];
        public static string AllowedKinds => string.Join(", ", Kinds.Select(k => k.Name()));

        /// <summary>Checks the combination of options (the same <see cref="LossSpec.Validate"/> as 'snce train') before any file is read.</summary>
        public LossSpec Validate()
        {
            if (EnumNames<LossKind>.TryParse(Loss) is not { } kind || !Kinds.Contains(kind))
                throw new ArgumentException($"unknown --loss '{Loss}'; use one of {AllowedKinds}");
            if ((Latents is null) == (Tokens is null))
                throw new ArgumentException("give exactly one of --latents Z.npy (latent-anchored) or --tokens T.npy (code-anchored)");
            return new LossSpec { Kind = kind, Tau = Tau, Perplexity = Perplexity, TopK = TopK, Epsilon = Epsilon }.Validate();
        }
    }

    static LossInfo Run(Request r, LossSpec spec, Device device)
    {
        using var scope = NewDisposeScope();
        var logits = LoadFloat(r.Logits, "--logits", dims: 2);
        var codebook = LoadFloat(r.Codebook, "--codebook", dims: 2);
        var latents = r.Latents is null ? null : LoadFloat(r.Latents, "--latents", dims: 2);
        var (n, k) = (logits.shape[0], logits.shape[1]);
        if (codebook.shape[0] != k)
            throw new ArgumentException($"--logits has K = {k} columns but --codebook has K = {codebook.shape[0]} codes ({r.Logits}, {r.Codebook})");
        if (latents is not null && latents.shape[0] != n)
            throw new ArgumentException($"--logits has N = {n} rows but --latents has N = {latents.shape[0]} ({r.Logits}, {r.Latents})");
        if (latents is not null && latents.shape[1] != codebook.shape[1])
            throw new ArgumentException($"--latents has D = {latents.shape[1]} but --codebook has D = {codebook.shape[1]} ({r.Latents}, {r.Codebook})");

        var ct = ComputeType(logits, codebook, latents);
        var metric = Metric.Parse(r.Metric);
        (logits, codebook, latents) = (logits.to(ct, device), codebook.to(ct, device), latents?.to(ct, device));
        var tokens = r.Tokens is { } path ? LoadTokens(path, n, k).to(device) : metric.Quantize(latents!, codebook);

        // The rows are the anchor sample: τ calibrates (and label smoothing's ε matches) on them; the anchor follows the input given.
        var resolver = LossResolver.For(spec.Kind);
        var needs = resolver.Needs(spec, latentsAvailable: latents is not null, calibrationSamples: (int)n);
        var anchor = latents is null ? NeighborAnchor.Code : NeighborAnchor.Latent;
        var loss = resolver.Resolve(spec, needs, codebook, metric, new AnchorSample(tokens, latents)).Create(codebook, metric);
        try
        {
            var targets = new TokenTargets(tokens, latents);
            var x = logits.detach().requires_grad_(true);
            var output = loss.Forward(x, targets);
            output.Loss.backward();
            var dense = ((IDenseTargets)loss).DenseTargets(targets, ct);
            var ppl = NeighborTargets.Perplexity(dense.clamp_min(0).log()); // log 0 = −inf: Entropy treats 0·log 0 as 0

            Directory.CreateDirectory(r.Out);
            Npy.Save(Path.Combine(r.Out, "loss.npy"), output.Loss.detach());
            Npy.Save(Path.Combine(r.Out, "grad_logits.npy"), x.grad!);
            Npy.Save(Path.Combine(r.Out, "targets.npy"), dense);
            var snce = loss as SnceLoss;
            var value = Scalar(output.Loss);
            var entropy = output.TargetEntropy is { } h ? Scalar(h) : (double?)null;
            var info = new LossInfo(
                loss.Name, metric.Name, anchor.Name(), value, Scalar(output.HardCe), entropy, value - entropy,
                snce?.Tau, snce?.TopK, loss is LabelSmoothingLoss ls ? ls.Epsilon : null,
                new PerplexityStats(Scalar(ppl.mean()), Scalar(ppl.std(unbiased: false)), Scalar(ppl.min()), Scalar(ppl.max())),
                snce?.Calibration, n, k, ct == ScalarType.Float64 ? "float64" : "float32", device.ToString());
            File.WriteAllText(Path.Combine(r.Out, "info.json"), JsonSerializer.Serialize(info, Json.Options) + "\n");
            return info;
        }
        finally
        {
            (loss as IDisposable)?.Dispose();
        }
    }

    static double Scalar(Tensor t) => t.to_type(ScalarType.Float64).item<double>();

    /// <summary>float64 when any input array is float64, else float32.</summary>
    static ScalarType ComputeType(params Tensor?[] arrays) =>
        arrays.Any(a => a?.dtype == ScalarType.Float64) ? ScalarType.Float64 : ScalarType.Float32;

    static Tensor LoadFloat(string path, string option, int dims)
    {
        var t = Npy.Load(path);
        if (t.dtype is not (ScalarType.Float32 or ScalarType.Float64))
            throw new InvalidDataException($"{option} {path}: dtype {t.dtype} is not supported; save float32 or float64");
        if (t.dim() != dims)
            throw new InvalidDataException($"{option} {path}: expected a {dims}-D array, got shape [{string.Join(", ", t.shape)}]");
        return t;
    }

    static Tensor LoadTokens(string path, long n, long k)
    {
        var t = Npy.Load(path);
        if (t.dtype is not (ScalarType.Int32 or ScalarType.Int64))
            throw new InvalidDataException($"--tokens {path}: dtype {t.dtype} is not supported; save int32 or int64 token ids");
        if (t.dim() is not (1 or 2))
            throw new InvalidDataException($"--tokens {path}: expected a 1-D or 2-D array, got shape [{string.Join(", ", t.shape)}]");
        var flat = t.reshape(-1).to_type(ScalarType.Int64);
        if (flat.shape[0] != n)
            throw new ArgumentException($"--logits has N = {n} rows but --tokens {path} has {flat.shape[0]} tokens");
        var (lo, hi) = n > 0 ? (flat.min().item<long>(), flat.max().item<long>()) : (0, 0);
        if (lo < 0 || hi >= k)
            throw new ArgumentException($"--tokens {path}: token ids must be in [0, {k}) for a codebook of K = {k}, found {(lo < 0 ? lo : hi)}");
        return flat;
    }
}
