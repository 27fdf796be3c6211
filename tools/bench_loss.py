#!/usr/bin/env python3
"""What a PyTorch user runs today for the loss, on the same GPU and shapes as `snce-bench loss`.

Forward+backward of one training step's loss with the output projection (hidden [N, H] and W [K, H] are leaves
that receive .grad): PyTorch cross-entropy on hard targets, soft-target cross-entropy against
q = softmax(-d(z, C)/tau) (dense [N, K] q and log p, l2 metric as in the C# benchmark), and optionally the soft
version through torch.compile. Peak memory: torch.cuda.max_memory_allocated / max_memory_reserved minus the
values after creating the inputs (reset_peak_memory_stats there; empty_cache between methods).

usage: python3 tools/bench_loss.py [--out FILE.json] [--ks 4096,16384,65536,262144] [--dtypes bf16,fp32] [--compile]
Prints one JSON document (and writes it to --out).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def step_fn(method, h, w, z, c, tokens, tau, dtype):
    def ce():
        logits = h @ w.t()
        F.cross_entropy(logits.float(), tokens).backward()

    def soft_loss(logits, q):
        return -(q * logits.float().log_softmax(1)).sum(1).mean()

    def targets():
        with torch.no_grad():
            zz, cc = z.to(dtype), c.to(dtype)
            d = (zz * zz).sum(1, keepdim=True) - 2 * zz @ cc.t() + (cc * cc).sum(1)
            return (d.float() * (-1.0 / tau)).softmax(1)

    def soft():
        logits = h @ w.t()
        soft_loss(logits, targets()).backward()

    compiled = torch.compile(soft_loss) if method == "soft-compiled" else None

    def soft_compiled():
        logits = h @ w.t()
        compiled(logits, targets()).backward()

    return {"ce": ce, "soft": soft, "soft-compiled": soft_compiled}[method]


def measure(method, n, hd, d, k, dtype, tau, warmup, repeats, dev):
    torch.manual_seed(20261128)
    h = torch.randn(n, hd, device=dev).to(dtype).requires_grad_()
    w = (torch.randn(k, hd, device=dev) / hd ** 0.5).to(dtype).requires_grad_()
    z = torch.randn(n, d, device=dev)
    c = torch.randn(k, d, device=dev)
    with torch.no_grad():
        tokens = torch.cat([torch.cdist(z[i:i + 4096], c).argmin(1) for i in range(0, n, 4096)])
    (h.detach() @ h.detach().t()).sum().item()  # cuBLAS init
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    alloc0, reserved0 = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    step = step_fn(method, h, w, z, c, tokens, tau, dtype)
    times = []
    for i in range(warmup + repeats):
        h.grad = None
        w.grad = None
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    gib = float(1 << 30)
    return {
        "status": "ok",
        "time_ms": statistics.median(times),
        "times_ms": times,
        "peak_alloc_gib": (torch.cuda.max_memory_allocated() - alloc0) / gib,
        "peak_reserved_gib": (torch.cuda.max_memory_reserved() - reserved0) / gib,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--ks", default="4096,16384,65536,262144")
    p.add_argument("--dtypes", default="bf16,fp32")
    p.add_argument("--tau", type=float, default=8.0)
    p.add_argument("--compile", action="store_true", help="also time the soft-target loss through torch.compile")
    p.add_argument("--budget-s", type=float, default=140.0, help="skip the remaining cases after this many seconds")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 1
    dev = torch.device("cuda")
    methods = ["ce", "soft"] + (["soft-compiled"] if a.compile else [])
    start = time.perf_counter()
    rows = []
    for dt in a.dtypes.split(","):
        dtype = torch.bfloat16 if dt == "bf16" else torch.float32
        for k in map(int, a.ks.split(",")):
            work = a.n * k * a.hidden
            repeats = 10 if work <= 2 ** 38 else 5 if work <= 2 ** 40 else 3
            for m in methods:
                row = {"dtype": dt, "K": k, "method": m, "repeats": repeats,
                       "bound_ms": 3 * 2.0 * a.n * k * a.hidden / 790e12 * 1e3}
                if time.perf_counter() - start > a.budget_s:
                    row["status"] = "skipped"
                else:
                    try:
                        row.update(measure(m, a.n, a.hidden, a.dim, k, dtype, a.tau, 1, repeats, dev))
                    except torch.cuda.OutOfMemoryError as e:
                        row.update({"status": "OOM", "message": str(e).split("\n")[0][:200]})
                    except Exception as e:  # noqa: BLE001 - report and go on
                        row.update({"status": "error", "message": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
                torch.cuda.empty_cache()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    doc = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "shapes": {"N": a.n, "H": a.hidden, "D": a.dim, "tau": a.tau, "metric": "l2"},
           "memory": "peak allocated / reserved above the inputs (torch.cuda.max_memory_*)", "rows": rows}
    text = json.dumps(doc, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
