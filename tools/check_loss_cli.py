#!/usr/bin/env python3
"""Cross-checks `snce loss` against PyTorch (tools/snce_reference.py) on random inputs.

For each configuration it writes .npy inputs, runs the given snce command, and compares loss.npy,
grad_logits.npy and targets.npy with PyTorch (float64: 1e-9; float32: 1e-4). With --perplexity it also
checks that the mean perplexity reached is within 2% of the target, and compares at the tau snce chose.
Prints a table; exits 1 on any mismatch. Needs torch and numpy.

Usage (from the repository root):
  python3 tools/check_loss_cli.py "bash .device/run.sh"                 # the bundled app on the GPU machine
  python3 tools/check_loss_cli.py "bash .device/run.sh" --device cuda
  python3 tools/check_loss_cli.py "dotnet src/Snce.Cli/bin/Release/net10.0/snce.dll" --device cpu
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snce_reference as ref  # noqa: E402

# name, loss, metric, anchor, dtype, N, K, D, options
CONFIGS = [
    ("ce", "ce", "l2", "latent", "float64", 9, 37, 6, {}),
    ("label-smoothing", "label-smoothing", "l2", "code", "float64", 9, 37, 6, {"epsilon": 0.2}),
    ("snce l2 latent", "snce", "l2", "latent", "float64", 9, 37, 6, {"tau": 0.5}),
    ("snce dot latent", "snce", "dot", "latent", "float64", 9, 37, 6, {"tau": 0.3}),
    ("snce cosine latent", "snce", "cosine", "latent", "float64", 9, 37, 6, {"tau": 0.05}),
    ("snce l2 code", "snce", "l2", "code", "float64", 9, 37, 6, {"tau": 1.0}),
    ("snce l2 latent top-k", "snce", "l2", "latent", "float64", 9, 37, 6, {"tau": 0.5, "top_k": 5}),
    ("snce dot code top-k", "snce", "dot", "code", "float64", 9, 37, 6, {"tau": 0.3, "top_k": 4}),
    ("snce l2 tau=1e-3 far", "snce", "l2", "latent", "float64", 9, 37, 6, {"tau": 1e-3, "scale": 30.0}),
    ("snce l2 perplexity", "snce", "l2", "latent", "float64", 64, 37, 6, {"perplexity": 4.0}),
    ("snce cosine perplexity top-k", "snce", "cosine", "code", "float64", 64, 37, 6, {"perplexity": 3.0, "top_k": 8}),
    ("snce l2 latent f32", "snce", "l2", "latent", "float32", 33, 300, 8, {"tau": 0.5}),
    ("snce dot code top-k f32", "snce", "dot", "code", "float32", 33, 300, 8, {"tau": 0.5, "top_k": 16}),
    ("ce f32 N=1", "ce", "l2", "latent", "float32", 1, 13, 4, {}),
]


def run_config(cmd, device, workdir, index, name, loss, metric, anchor, dtype, n, k, d, opts):
    g = torch.Generator().manual_seed(500 + index)
    scale = opts.get("scale", 1.0)
    dt = torch.float64
    codebook = torch.randn(k, d, generator=g, dtype=dt) * (torch.rand(k, 1, generator=g, dtype=dt) + 0.5) * scale
    latents = torch.randn(n, d, generator=g, dtype=dt) * scale
    logits = torch.randn(n, k, generator=g, dtype=dt) * 2
    np_dtype = np.float64 if dtype == "float64" else np.float32
    # Round the inputs to the dtype snce sees, then compute the reference in float64 from those values.
    codebook, latents, logits = (torch.from_numpy(t.numpy().astype(np_dtype)).to(dt) for t in (codebook, latents, logits))
    tokens = ref.quantize(metric, latents, codebook)

    folder = os.path.join(workdir, f"case{index}")
    os.makedirs(folder)
    paths = {key: os.path.join(folder, key + ".npy") for key in ("logits", "codebook", "latents", "tokens")}
    np.save(paths["logits"], logits.numpy().astype(np_dtype))
    np.save(paths["codebook"], codebook.numpy().astype(np_dtype))
    args = shlex.split(cmd) + ["loss", "--logits", paths["logits"], "--codebook", paths["codebook"],
                               "--loss", loss, "--metric", metric, "--out", os.path.join(folder, "out")]
    if anchor == "latent":
        np.save(paths["latents"], latents.numpy().astype(np_dtype))
        args += ["--latents", paths["latents"]]
    else:
        np.save(paths["tokens"], tokens.numpy().astype(np.int32))
        args += ["--tokens", paths["tokens"]]
    for key, flag in (("tau", "--tau"), ("perplexity", "--perplexity"), ("top_k", "--top-k"), ("epsilon", "--epsilon")):
        if key in opts:
            args += [flag, repr(opts[key])]
    if device:
        args += ["--device", device]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"name": name, "ok": False, "why": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}

    out = os.path.join(folder, "out")
    got_loss = float(np.load(os.path.join(out, "loss.npy")))
    got_grad = torch.from_numpy(np.load(os.path.join(out, "grad_logits.npy"))).to(dt)
    got_targets = torch.from_numpy(np.load(os.path.join(out, "targets.npy"))).to(dt)
    with open(os.path.join(out, "info.json")) as f:
        info = json.load(f)
    tau = info.get("tau")
    z = latents if anchor == "latent" else None
    t = ref.targets(loss, metric, codebook, tokens, z, tau, opts.get("top_k"), opts.get("epsilon"))
    value, grad = ref.mean_soft_ce(logits, t)
    tol = 1e-9 if dtype == "float64" else 1e-4
    errors = {
        "loss": abs(value.item() - got_loss),
        "grad": (grad - got_grad).abs().max().item(),
        "targets": (t - got_targets).abs().max().item(),
    }
    why = [f"{key} off by {err:.2e}" for key, err in errors.items() if not err <= tol]
    if "perplexity" in opts:
        reached = ref.perplexity(t).mean().item()
        if abs(reached / opts["perplexity"] - 1) >= 0.02:
            why.append(f"mean perplexity {reached:.4g} vs target {opts['perplexity']}")
    return {"name": name, "dtype": dtype, "ref": value.item(), "snce": got_loss, "tau": tau, **errors,
            "tol": tol, "ok": not why, "why": "; ".join(why)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snce", help='how to run snce, e.g. "bash .device/run.sh" or "dotnet path/to/snce.dll"')
    parser.add_argument("--device", help="passed to snce loss --device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--keep", help="write the inputs and outputs here instead of a temporary folder")
    a = parser.parse_args()
    torch.set_num_threads(1)
    workdir = a.keep or tempfile.mkdtemp(prefix="snce-check-loss-")
    os.makedirs(workdir, exist_ok=True)
    rows = [run_config(a.snce, a.device, workdir, i, *c) for i, c in enumerate(CONFIGS)]
    print(f"{'configuration':<30} {'dtype':<8} {'loss (torch)':>14} {'loss (snce)':>14} {'tau':>10} "
          f"{'|dloss|':>9} {'max|dgrad|':>10} {'max|dq|':>9}  result")
    for r in rows:
        if "ref" not in r:
            print(f"{r['name']:<30} FAILED  {r['why']}")
            continue
        tau = "" if r["tau"] is None else f"{r['tau']:.4g}"
        print(f"{r['name']:<30} {r['dtype']:<8} {r['ref']:>14.8f} {r['snce']:>14.8f} {tau:>10} "
              f"{r['loss']:>9.1e} {r['grad']:>10.1e} {r['targets']:>9.1e}  {'ok' if r['ok'] else 'MISMATCH: ' + r['why']}")
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)} passed, {len(bad)} failed")
    if a.keep is None and not bad:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
