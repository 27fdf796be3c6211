#!/usr/bin/env python3
"""Where a training step's GPU time goes, for the PyTorch twin of the Snce generator (tools/bench_training.py),
eager and torch.compile: torch.profiler over a few steps, CUDA kernel time grouped into categories (matmul,
attention, norm/rotary/SwiGLU elementwise, reductions, casts/copies, loss, optimizer, fused Triton kernels...),
next to the step's wall time, so that the difference (CPU dispatch and launch gaps) shows.

Also parses an Nsight Compute CSV (--ncu FILE, from `ncu --csv --metrics gpu__time_duration.sum ...` over the
Snce process) with the same categories, so that the C# step's kernels sit next to the twin's.

Usage (GPU machine): python3 tools/profile_training.py --preset S --batch 256 --grid 8 --k 16384 --classes 10 \
    --cases eager:bf16-weights:foreach,compile:bf16-autocast:fused --out prof.json
Prints a markdown table; writes JSON to --out.
"""
import argparse
import csv
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (category, pattern on the kernel name), first match wins.
CATEGORIES = [
    ("attention (flash/SDPA)", r"flash|fmha|attention|pytorch_flash|efficient"),
    ("matmul (cuBLAS/CUTLASS)", r"gemm|xmma|cutlass|sm90_|nvjet|cublas|splitK|Kernel2"),
    ("fused (Triton, torch.compile)", r"^triton_|triton"),
    ("optimizer (AdamW)", r"multi_tensor|adam|Adam|foreach"),
    ("loss (softmax/CE)", r"softmax|nll|log_softmax|cross_entropy|cunn_SoftMax"),
    ("reductions (norm stats, grad norm)", r"reduce_kernel|Reduce|norm_kernel|mean|sum_kernel"),
    ("cat / index / embedding", r"CatArray|cat_|index|gather|scatter|embedding|Embedding"),
    ("casts / copies", r"copy|direct_copy|to_copy|convert|unrolled_elementwise_kernel.*copy"),
    ("elementwise (norm, rotary, SwiGLU, residual, ...)", r"elementwise|vectorized|silu|mul|add|pow|rsqrt|lerp"),
]


def category(name):
    for cat, pat in CATEGORIES:
        if re.search(pat, name):
            return cat
    return "other"


def table(rows, total_ms, wall_ms, title):
    out = [f"### {title}", "", f"step wall time {wall_ms:.2f} ms; GPU kernel time {total_ms:.2f} ms "
           f"({100 * total_ms / wall_ms:.0f} % busy; the rest is CPU dispatch and launch gaps)", "",
           "| category | kernels/step | ms/step | share of kernel time |", "|---|---|---|---|"]
    for cat, (n, ms) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        out.append(f"| {cat} | {n:.0f} | {ms:.2f} | {100 * ms / max(total_ms, 1e-9):.1f} % |")
    return "\n".join(out)


def profile_case(args, mode, precision, fused):
    import torch
    from torch.profiler import profile, ProfilerActivity
    import bench_training as bt
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    model, step = bt.training_step(args, device, mode, precision, fused)
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    wall = (time.time() - t0) / args.steps * 1e3
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
    rows = {}
    for e in prof.key_averages():
        dt = getattr(e, "self_device_time_total", None)
        if dt is None:
            dt = getattr(e, "self_cuda_time_total", 0)
        if dt <= 0 or e.key.startswith("cuda") or e.key.startswith("Memcpy") and False:
            continue
        c = category(e.key)
        n, ms = rows.get(c, (0, 0.0))
        rows[c] = (n + e.count / args.steps, ms + dt / 1e3 / args.steps)
    total = sum(ms for _, ms in rows.values())
    del model, step
    torch.cuda.empty_cache()
    return rows, total, wall


def parse_ncu(path, steps):
    rows, names = {}, {}
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        v = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "nsecond")
        ms = v / 1e6 if unit.startswith("n") else v / 1e3 if unit.startswith("u") else v
        name = r["Kernel Name"]
        c = category(name)
        n, t = rows.get(c, (0, 0.0))
        rows[c] = (n + 1 / steps, t + ms / steps)
        names[name] = names.get(name, 0.0) + ms / steps
    return rows, sum(t for _, t in rows.values()), names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="S")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--k", type=int, default=16384)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--cases", default="eager:bf16-weights:foreach,compile:bf16-autocast:fused")
    ap.add_argument("--ncu", help="an ncu CSV of the Snce process to break down with the same categories")
    ap.add_argument("--ncu-steps", type=float, default=1, help="training steps the ncu CSV covers")
    ap.add_argument("--ncu-wall-ms", type=float, default=0, help="Snce's measured step time, for the busy share")
    ap.add_argument("--out")
    args = ap.parse_args()
    result, text = {"shape": vars(args).copy(), "cases": {}}, []
    if args.ncu:
        rows, total, names = parse_ncu(args.ncu, args.ncu_steps)
        wall = args.ncu_wall_ms or total
        text.append(table(rows, total, wall, f"Snce (C#, Nsight Compute), {args.preset} batch {args.batch} {args.grid}x{args.grid} K {args.k}"))
        top = sorted(names.items(), key=lambda kv: -kv[1])[:25]
        text.append("\nTop kernels (ms/step): " + "; ".join(f"{n[:70]} {ms:.2f}" for n, ms in top))
        result["cases"]["snce-ncu"] = {"rows": rows, "kernel_ms": total, "wall_ms": wall, "top": top}
    else:
        for case in args.cases.split(","):
            mode, precision, adamw = case.split(":")
            rows, total, wall = profile_case(args, mode, precision, adamw == "fused")
            text.append(table(rows, total, wall, f"PyTorch {case}, {args.preset} batch {args.batch} {args.grid}x{args.grid} K {args.k}"))
            result["cases"][case] = {"rows": rows, "kernel_ms": total, "wall_ms": wall}
    print("\n\n".join(text))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
