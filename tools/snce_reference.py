"""Reference SNCE math in PyTorch, written from docs/losses.md independently of the C# code.

Shared by golden_losses.py (golden files for the C# tests) and check_loss_cli.py (cross-check of `snce loss`).
Needs only torch. Everything is computed in the dtype of the inputs; pass float64 for golden values.
"""
import torch
import torch.nn.functional as F

METRICS = ("l2", "dot", "cosine")


def distances(metric, z, c):
    """d(z_i, c_k) for all pairs: z [N, D], c [K, D] -> [N, K].

    l2 uses the expansion ||z||^2 - 2 z.c + ||c||^2 (clamped at 0), the same rounding as Snce's Metric, so
    that float64 results agree to ~1e-12 even where tau is tiny and the distances are large.
    """
    if metric == "l2":
        return ((z * z).sum(1, keepdim=True) - 2 * z @ c.T + (c * c).sum(1)[None, :]).clamp_min(0)
    if metric == "dot":
        return -(z @ c.T)
    if metric == "cosine":
        return -(F.normalize(z, p=2, dim=1, eps=1e-12) @ F.normalize(c, p=2, dim=1, eps=1e-12).T)
    raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")


def quantize(metric, z, c):
    """The tokenizer's rule: argmin_k d(z, c_k)."""
    return distances(metric, z, c).argmin(1)


def snce_targets(metric, codebook, tokens, latents, tau, top_k=None):
    """q(k | z) = softmax_k(-d(z, c_k) / tau); z = latents (latent-anchored) or codebook[tokens] (code-anchored).
    With top_k: keep the k smallest distances, renormalize, zeros elsewhere. Returns dense [N, K]."""
    z = latents if latents is not None else codebook[tokens]
    d = distances(metric, z, codebook)
    if top_k is None:
        return torch.softmax(-d / tau, dim=1)
    kept, ids = torch.topk(d, top_k, dim=1, largest=False)
    q = torch.zeros_like(d)
    return q.scatter_(1, ids, torch.softmax(-kept / tau, dim=1))


def label_smoothing_targets(tokens, num_codes, epsilon, dtype):
    """1 - eps on the true token, eps / (K - 1) on each other code (Snce's convention)."""
    t = torch.full((tokens.shape[0], num_codes), epsilon / (num_codes - 1), dtype=dtype)
    t[torch.arange(tokens.shape[0]), tokens] = 1 - epsilon
    return t


def targets(loss, metric, codebook, tokens, latents=None, tau=None, top_k=None, epsilon=None):
    """The dense [N, K] target distribution of a loss."""
    k = codebook.shape[0]
    if loss == "ce":
        return F.one_hot(tokens, k).to(codebook.dtype)
    if loss == "label-smoothing":
        return label_smoothing_targets(tokens, k, epsilon, codebook.dtype)
    if loss == "snce":
        return snce_targets(metric, codebook, tokens, latents, tau, top_k)
    raise ValueError(f"unknown loss {loss!r}")


def mean_soft_ce(logits, t):
    """Loss = mean_i -sum_k t_ik log softmax(logits)_ik and its gradient w.r.t. the logits, by autograd."""
    x = logits.detach().clone().requires_grad_(True)
    loss = -(t * F.log_softmax(x, dim=1)).sum(1).mean()
    loss.backward()
    return loss.detach(), x.grad.detach()


def hard_ce(logits, tokens):
    return F.cross_entropy(logits, tokens)


def entropy(t):
    """Row-wise H(t) in nats, 0 log 0 = 0."""
    return torch.special.entr(t).sum(1)


def perplexity(t):
    """Row-wise 2^H(t) with H in bits (= e^H in nats)."""
    return torch.exp(entropy(t))
