using System.Text.Json;
using System.Text.Json.Serialization;
using Snce.Data;
using Snce.IO;
using Snce.Text;
using Snce.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Snce.Evaluation;

/// <summary>Text–image retrieval scores: the CLIP-score analogue of text-to-image evaluation.</summary>
/// <param name="R1">Share of images whose own caption ranks first among the candidates.</param>
/// <param name="R5">Share whose caption ranks in the top 5.</param>
/// <param name="MeanCosine">Mean cosine between each image's embedding and its caption's (CLIP score without the ×100).</param>
/// <param name="Count">Images scored.</param>
/// <param name="Candidates">Captions each image is ranked against (its own included): 100, or fewer for small sets.</param>
public sealed record AlignmentScore(
    [property: JsonPropertyName("r1")] double R1, [property: JsonPropertyName("r5")] double R5,
    [property: JsonPropertyName("mean_cosine")] double MeanCosine, [property: JsonPropertyName("count")] int Count,
    [property: JsonPropertyName("candidates")] int Candidates);

/// <summary>How to train the text-alignment evaluator.</summary>
public sealed record TextEvaluatorOptions
{
    /// <summary>Optimizer steps of the contrastive training, ≥ 1.</summary>
    public int Steps { get; init; } = 2000;
    /// <summary>(image, caption) pairs per step, ≥ 2; the other pairs of the batch are each pair's negatives.</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>Peak AdamW learning rate, decayed to 0 by a cosine over <see cref="Steps"/> (<see cref="Training.LrSchedule.CosineFromStepOne"/>).</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>Channels of the image tower's first stage (the evaluation classifier's CNN).</summary>
    public int Width { get; init; } = 32;
    /// <summary>Seeds the tower's initialization and the pairs drawn at every step.</summary>
    public long Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the values when one is out of range.</summary>
    public void Validate()
    {
        if (Steps < 1 || BatchSize < 2 || !(LearningRate > 0) || Width < 1)
            throw new ArgumentException($"evaluator training needs steps ≥ 1, batch ≥ 2, lr > 0 and width ≥ 1 (got {Steps}, {BatchSize}, {LearningRate}, {Width})");
    }
}

/// <summary>What a trained evaluator is and its ceiling: the scores of real held-out images.</summary>
public sealed record TextEvaluatorInfo(
    [property: JsonPropertyName("data_set")] string DataSet,
    [property: JsonPropertyName("encoder")] string Encoder,
    [property: JsonPropertyName("tower")] ClassifierConfig Tower,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("train_count")] int TrainCount,
    [property: JsonPropertyName("held_out_images")] AlignmentScore? HeldOutImages,
    [property: JsonPropertyName("held_out_phrasings")] AlignmentScore? HeldOutPhrasings);

/// <summary>
/// "EmojiCLIP": an image tower (the evaluation classifier's CNN with a 384-d output) trained contrastively (symmetric
/// InfoNCE with a learned temperature, Radford et al. 2021) against the frozen pooled MiniLM vectors of the real training
/// captions. It scores generated images by retrieval of their prompt; its scores on real held-out images are the ceiling
/// every generated-image score is printed next to.
/// </summary>
public sealed class TextEvaluator : IDisposable
{
    /// <summary>The image tower's weights and the learned temperature, in the evaluator's checkpoint folder.</summary>
    public const string WeightsFile = "model.safetensors";
    /// <summary>The <see cref="TextEvaluatorInfo"/> (what it was trained on, its real-image ceiling) as JSON.</summary>
    public const string InfoFile = "evaluator.json";

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    readonly ImageClassifier tower;
    readonly Parameter logitScale;

    TextEvaluator(ClassifierConfig config, Device device)
    {
        tower = new ImageClassifier(config);
        tower.to(device);
        logitScale = new Parameter(tensor(Math.Log(1 / 0.07), dtype: ScalarType.Float32, device: device));
    }

    /// <summary>The evaluator's description and real-image ceiling.</summary>
    public TextEvaluatorInfo Info { get; private set; } = null!;

    /// <summary>uint8 images [N, C, H, W] → L2-normalized embeddings [N, E] (CPU), in eval mode, in batches.</summary>
    public Tensor Embed(Tensor uint8Images, int batch = 256)
    {
        using var noGrad = no_grad();
        tower.eval();
        var device = logitScale.device;
        var parts = new List<Tensor>();
        for (long i = 0; i < uint8Images.shape[0]; i += batch)
        {
            using var scope = NewDisposeScope();
            var x = uint8Images.narrow(0, i, Math.Min(batch, uint8Images.shape[0] - i)).to(device);
            parts.Add(nn.functional.normalize(tower.call(x), dim: 1).cpu().MoveToOuterDisposeScope());
        }
        var result = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return result;
    }

    /// <summary>
    /// Retrieval of each image's caption among <paramref name="candidates"/> (its own and the next ones in order, in
    /// blocks): images [N, E] and captions [N, E] (row i is image i's caption; both normalized). A caption whose text equals
    /// the true one (<paramref name="captionKeys"/>) does not count as a miss.
    /// </summary>
    public static AlignmentScore Score(Tensor images, Tensor captions, IReadOnlyList<string> captionKeys, int candidates = 100)
    {
        using var scope = NewDisposeScope();
        var n = (int)images.shape[0];
        if (n == 0) return new AlignmentScore(0, 0, 0, 0, 0);
        var cos = (images * captions).sum(1);
        double r1 = 0, r5 = 0;
        var block = Math.Min(candidates, n);
        for (var start = 0; start < n; start += block)
        {
            var len = Math.Min(block, n - start);
            var sims = images.narrow(0, start, len).matmul(captions.narrow(0, start, len).t()).data<float>().ToArray();   // [len, len]
            for (var i = 0; i < len; i++)
            {
                var own = sims[i * len + i];
                var better = 0;
                for (var j = 0; j < len; j++)
                    if (sims[i * len + j] > own && captionKeys[start + j] != captionKeys[start + i]) better++;
                if (better == 0) r1++;
                if (better < 5) r5++;
            }
        }
        return new AlignmentScore(r1 / n, r5 / n, cos.mean().item<float>(), n, block);
    }

    /// <summary>
    /// Trains the evaluator on the training split of <paramref name="data"/> and scores real held-out images and phrasings.
    /// Cancelled, it stops after the current step and returns the part-trained tower unscored (<see cref="TextEvaluatorInfo.Steps"/>: the steps done).
    /// </summary>
    public static TextEvaluator Train(ImageDataset data, CaptionSet captions, TextEmbeddingCache cache, TextEvaluatorOptions options, Device device,
        IProgress<(int Step, double Loss)>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        var split = data.Split.data<byte>().ToArray();
        var train = Enumerable.Range(0, data.Count).Where(i => split[i] == ImageDataset.TrainSplit).ToArray();
        if (train.Length < 2) throw new ArgumentException($"data set '{data.Name}' has {train.Length} training images; the evaluator needs at least 2");
        var flat = train.SelectMany(i => captions.Train[i].Select(c => (Image: i, Caption: c))).ToArray();
        var vectors = cache.Get([.. flat.Select(f => f.Caption)]);
        var e = MiniLmEncoder.Dimension;
        // The run's own random stream (initialization, dropout), as torch.manual_seed gave it; the caller's CPU stream is given back.
        using var seeded = DeviceRandom.SeededDefault(options.Seed, CPU);
        if (device.type == DeviceType.CUDA) DeviceRandom.SeedDefault(options.Seed, device);
        var evaluator = new TextEvaluator(new ClassifierConfig(data.Channels, data.Size, e, options.Width), device);
        using var images = data.Images.to(device);
        using var text = tensor(vectors.SelectMany(v => v.Pooled).ToArray(), [flat.Length, e]).to(device);
        using var imageOf = tensor(flat.Select(f => (long)f.Image).ToArray()).to(device);
        var parameters = evaluator.tower.parameters().Append(evaluator.logitScale).ToArray();
        using var optimizer = optim.AdamW(parameters, options.LearningRate, weight_decay: 1e-4);
        using var generator = new Generator((ulong)options.Seed);
        evaluator.tower.train();
        var done = 0;
        for (var step = 1; step <= options.Steps && !cancel.IsCancellationRequested; step++, done++)
        {
            using var scope = NewDisposeScope();
            var lr = LrSchedule.CosineFromStepOne(options.LearningRate, step, options.Steps);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            var pick = randint(flat.Length, [Math.Min(options.BatchSize, flat.Length)], generator: generator).to(device);   // (image, caption) pairs
            var img = nn.functional.normalize(evaluator.tower.call(images.index_select(0, imageOf.index_select(0, pick))), dim: 1);
            var logits = img.matmul(text.index_select(0, pick).t()) * evaluator.logitScale.clamp_max(Math.Log(100)).exp();
            var target = arange(pick.shape[0], device: device);
            var loss = (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.t(), target)) / 2;
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            if (progress is not null && (step == 1 || step % 50 == 0 || step == options.Steps)) progress.Report((step, loss.item<float>()));   // step 1: the bar shows at once
        }
        if (done < options.Steps)                                             // stopped: no scores for a part-trained tower
        {
            evaluator.Info = new TextEvaluatorInfo(data.Name, MiniLmEncoder.ModelId, evaluator.tower.Config, done, train.Length, null, null);
            return evaluator;
        }
        var heldOutImages = Enumerable.Range(0, data.Count).Where(i => split[i] == ImageDataset.ValidationSplit).ToArray();
        var phrased = train.Where(i => captions.HeldOut[i].Length > 0).ToArray();
        evaluator.Info = new TextEvaluatorInfo(data.Name, MiniLmEncoder.ModelId, evaluator.tower.Config, options.Steps, train.Length,
            heldOutImages.Length == 0 ? null : evaluator.ScoreReal(data, heldOutImages, [.. heldOutImages.Select(i => captions.Train[i][0])], cache),
            phrased.Length == 0 ? null : evaluator.ScoreReal(data, phrased, [.. phrased.Select(i => captions.HeldOut[i][0])], cache));
        return evaluator;
    }

    /// <summary>Scores images <paramref name="rows"/> of <paramref name="data"/> against <paramref name="captionTexts"/> (one per row).</summary>
    public AlignmentScore ScoreReal(ImageDataset data, int[] rows, string[] captionTexts, TextEmbeddingCache cache)
    {
        using var scope = NewDisposeScope();
        var imgs = Embed(data.Images.index_select(0, tensor(rows.Select(r => (long)r).ToArray())));
        return ScoreImages(imgs, captionTexts, cache);
    }

    /// <summary>Scores image embeddings [N, E] (from <see cref="Embed"/>) against their captions.</summary>
    public static AlignmentScore ScoreImages(Tensor imageEmbeddings, string[] captionTexts, TextEmbeddingCache cache)
    {
        using var scope = NewDisposeScope();
        var vec = cache.Get(captionTexts);
        var txt = tensor(vec.SelectMany(v => v.Pooled).ToArray(), [captionTexts.Length, MiniLmEncoder.Dimension]);
        return Score(imageEmbeddings, txt, captionTexts);
    }

    /// <summary>Writes the checkpoint folder atomically: weights (tower + logit_scale) and evaluator.json.</summary>
    public void Save(string dir)
    {
        var json = JsonSerializer.Serialize(Info, JsonOptions);
        CheckpointFolder.Write(dir, tmp =>
        {
            var weights = tower.state_dict();
            weights["logit_scale"] = logitScale;
            Safetensors.Save(Path.Combine(tmp, WeightsFile), weights, new Dictionary<string, string> { ["format"] = "snce-text-evaluator-1" });
            AtomicFile.WriteAllText(Path.Combine(tmp, InfoFile), json + "\n");
        });
    }

    /// <summary>Loads an evaluator folder; fails naming the command that makes one.</summary>
    public static TextEvaluator Load(string dir, Device? device = null)
    {
        var resolved = CheckpointFolder.Resolve(dir);
        if (resolved is null || !File.Exists(Path.Combine(resolved, InfoFile)))
            throw new DirectoryNotFoundException($"no text evaluator at {dir}; train one with 'snce evaluator train --data emoji --out {dir}'");
        var info = JsonSerializer.Deserialize<TextEvaluatorInfo>(File.ReadAllText(Path.Combine(resolved, InfoFile)))
            ?? throw new InvalidDataException($"{resolved}: empty {InfoFile}");
        var evaluator = new TextEvaluator(info.Tower, device ?? CPU) { Info = info };
        var (tensors, _) = Safetensors.Load(Path.Combine(resolved, WeightsFile));
        try
        {
            using var noGrad = no_grad();
            foreach (var (name, target) in evaluator.tower.state_dict())
            {
                if (!tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"{resolved}: weights missing for {name}");
                target.copy_(t);
            }
            evaluator.logitScale.copy_(tensors["logit_scale"]);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        return evaluator;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        tower.Dispose();
        logitScale.Dispose();
    }
}
