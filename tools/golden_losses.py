#!/usr/bin/env python3
"""Golden values for Snce's losses, computed with PyTorch (float64, CPU) from tools/snce_reference.py.

Writes tests/Snce.Tests/Golden/losses/<case>/*.npy and cases.json; GoldenLossTests compares Snce's loss,
gradient w.r.t. the logits and dense targets to these within 1e-9. Needs torch and numpy only; runs on a
CPU-only torch. Usage (from the repository root):  python3 tools/golden_losses.py
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snce_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "Snce.Tests", "Golden", "losses")
MAX_BYTES = 500_000

# name, loss, metric, anchor, N, K, D, tau, top_k, epsilon, scale of latents and codes
CASES = [
    ("ce_l2", "ce", "l2", "latent", 7, 13, 4, None, None, None, 1.0),
    ("ls_eps0.1", "label-smoothing", "l2", "code", 7, 13, 4, None, None, 0.1, 1.0),
    ("ls_eps0.3_n1_k300", "label-smoothing", "dot", "code", 1, 300, 8, None, None, 0.3, 1.0),
    ("snce_l2_latent_tau0.5", "snce", "l2", "latent", 7, 13, 4, 0.5, None, None, 1.0),
    ("snce_dot_latent_tau0.2", "snce", "dot", "latent", 7, 13, 4, 0.2, None, None, 1.0),
    ("snce_cosine_latent_tau0.05", "snce", "cosine", "latent", 7, 13, 4, 0.05, None, None, 1.0),
    ("snce_l2_code_tau1", "snce", "l2", "code", 7, 13, 4, 1.0, None, None, 1.0),
    ("snce_dot_code_tau1e3", "snce", "dot", "code", 7, 13, 4, 1e3, None, None, 1.0),
    ("snce_cosine_code_n1_topk13", "snce", "cosine", "code", 1, 13, 4, 0.1, 13, None, 1.0),
    ("snce_l2_latent_topk5", "snce", "l2", "latent", 7, 13, 4, 0.5, 5, None, 1.0),
    ("snce_dot_code_topk4", "snce", "dot", "code", 7, 13, 4, 0.3, 4, None, 1.0),
    ("snce_l2_latent_k300_tau2", "snce", "l2", "latent", 7, 300, 8, 2.0, None, None, 1.0),
    ("snce_cosine_latent_k300_topk16", "snce", "cosine", "latent", 7, 300, 8, 0.02, 16, None, 1.0),
    ("snce_l2_latent_tau1e-3_far", "snce", "l2", "latent", 7, 13, 4, 1e-3, None, None, 30.0),
    ("snce_l2_code_n1_k300_topk8_tau1e-3_far", "snce", "l2", "code", 1, 300, 8, 1e-3, 8, None, 30.0),
    ("snce_dot_latent_k300_tau0.5", "snce", "dot", "latent", 7, 300, 8, 0.5, None, None, 0.5),
]


def save(folder, name, array):
    path = os.path.join(folder, name + ".npy")
    np.save(path, np.ascontiguousarray(array))
    return os.path.relpath(path, OUT)


def make_case(index, name, loss, metric, anchor, n, k, d, tau, top_k, epsilon, scale):
    g = torch.Generator().manual_seed(1000 + index)
    dt = torch.float64
    codebook = torch.randn(k, d, generator=g, dtype=dt) * (torch.rand(k, 1, generator=g, dtype=dt) + 0.5) * scale
    latents = torch.randn(n, d, generator=g, dtype=dt) * scale
    logits = torch.randn(n, k, generator=g, dtype=dt) * 2
    tokens = ref.quantize(metric, latents, codebook)
    z = latents if anchor == "latent" else None
    t = ref.targets(loss, metric, codebook, tokens, z, tau, top_k, epsilon)
    value, grad = ref.mean_soft_ce(logits, t)

    folder = os.path.join(OUT, name)
    os.makedirs(folder)
    files = {
        "logits": save(folder, "logits", logits.numpy()),
        "codebook": save(folder, "codebook", codebook.numpy()),
        "tokens": save(folder, "tokens", tokens.numpy().astype(np.int64)),
        "targets": save(folder, "targets", t.numpy()),
        "grad_logits": save(folder, "grad_logits", grad.numpy()),
    }
    if anchor == "latent":
        files["latents"] = save(folder, "latents", latents.numpy())
    return {
        "name": name, "loss": loss, "metric": metric, "anchor": anchor,
        "n": n, "k": k, "d": d, "tau": tau, "top_k": top_k, "epsilon": epsilon,
        "files": files,
        "value": value.item(),
        "hard_ce": ref.hard_ce(logits, tokens).item(),
        "target_entropy": None if loss == "ce" else ref.entropy(t).mean().item(),
        "mean_perplexity": ref.perplexity(t).mean().item(),
    }


def main():
    torch.set_num_threads(1)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    cases = [make_case(i, *c) for i, c in enumerate(CASES)]
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"generator": "tools/golden_losses.py", "torch": torch.__version__, "dtype": "float64",
                   "tolerance": 1e-9, "cases": cases}, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"wrote {len(cases)} cases, {total / 1000:.0f} kB, to {os.path.relpath(OUT, ROOT)}")
    if total > MAX_BYTES:
        sys.exit(f"golden files take {total} bytes, over the {MAX_BYTES}-byte budget: shrink the cases")


if __name__ == "__main__":
    main()
