#!/usr/bin/env python3
"""The Snce generator (preset B: LlamaGen GPT-B shape) in PyTorch, to time one training step the way a PyTorch
user runs it, next to `snce-bench training` (bench/Snce.Bench/TrainingBench.cs), same shapes and same work:
class prefix token + token embeddings -> pre-norm blocks (RMSNorm with fp32 statistics, fused q/k/v, axial 2-D
rotary in fp32, scaled_dot_product_attention, SwiGLU with fused W1/W3) -> RMSNorm -> zero-initialized head;
next-token CE in fp32 on all 256 positions; CFG dropout 0.1; clip_grad_norm_(1.0); AdamW (decay on linear
weights only); EMA of the weights. Written for this benchmark from the C# model (src/Snce/Models), not copied.

Rows: eager and torch.compile (forward + loss compiled), bf16 autocast over fp32 weights (what PyTorch users
run), TF32, and bf16 weights (like FACTS.md's reference run). Prints one JSON object (also to --out).
--quick runs a tiny model on the CPU (falls back to explicit attention when the installed torch has no SDPA).
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"tiny": (64, 2, 2, 32), "S": (384, 12, 6, 256), "B": (768, 12, 12, 256)}  # dim, layers, heads, ffn multiple


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight


def rope_tables(prefix, h, w, head_dim, base=10000.0):
    quarter = head_dim // 4
    freqs = torch.exp(torch.arange(quarter, dtype=torch.float64) * (-math.log(base) / quarter))
    cell = torch.arange(h * w)
    rows, cols = (cell // w).double(), (cell % w).double()
    angles = torch.cat([torch.outer(rows, freqs), torch.outer(cols, freqs)], 1)
    angles = torch.cat([torch.zeros(prefix, head_dim // 2, dtype=torch.float64), angles], 0)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):  # x [B, S, 2, H, hd]; cos/sin [S, hd/2]
    s, hd = x.shape[1], x.shape[-1]
    c, si = cos[:s].view(s, 1, 1, hd // 2), sin[:s].view(s, 1, 1, hd // 2)
    xf = x.float()
    x1, x2 = xf[..., : hd // 2], xf[..., hd // 2:]
    return torch.cat([x1 * c - x2 * si, x2 * c + x1 * si], -1).to(x.dtype)


def attention(q, k, v, causal):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = q.shape[-2]
        scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x, cos, sin, causal):
        b, s, d = x.shape
        qkv = self.wqkv(x).view(b, s, 3, self.heads, self.hd)
        qk = apply_rope(qkv[:, :, :2], cos, sin)
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        return self.wo(attention(q, k, v, causal).transpose(1, 2).reshape(b, s, d))


class SwiGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.hidden = hidden
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        gv = self.w13(x)
        return self.w2(F.silu(gv[..., : self.hidden]) * gv[..., self.hidden:])


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.attention_norm, self.attention = RMSNorm(dim), Attention(dim, heads)
        self.ffn_norm, self.feed_forward = RMSNorm(dim), SwiGLU(dim, hidden)

    def forward(self, x, cos, sin, causal):
        h = x + self.attention(self.attention_norm(x), cos, sin, causal)
        return h + self.feed_forward(self.ffn_norm(h))


class Generator(nn.Module):
    def __init__(self, preset, k, grid, classes):
        super().__init__()
        dim, layers, heads, multiple = PRESETS[preset]
        hidden = (2 * 4 * dim // 3 + multiple - 1) // multiple * multiple
        self.class_embedding = nn.Embedding(classes + 1, dim)
        self.tok_embeddings = nn.Embedding(k, dim)
        self.layers = nn.ModuleList(Block(dim, heads, hidden) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, k, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0, 0.02)
        nn.init.zeros_(self.output.weight)
        cos, sin = rope_tables(1, grid, grid, dim // heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.dims = (dim, layers, hidden)

    def forward(self, cond, tokens):  # AR: tokens [B, n] -> logits [B, n+1, K]
        x = torch.cat([self.class_embedding(cond).unsqueeze(1), self.tok_embeddings(tokens)], 1)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, True)
        return self.output(self.norm(x))


def model_flops(model, batch, t, k):
    dim, layers, hidden = model.dims
    matmul = layers * (4 * dim * dim + 3 * dim * hidden) + dim * k
    return batch * t * (6 * matmul + 12 * layers * dim * t)


def training_step(args, device, mode, precision, fused):
    """The step both this benchmark and tools/profile_training.py time: the model at args' shape (seed 0), AdamW
    (decay on linear weights only), fp32 EMA and one fixed batch. mode eager|compile; precision bf16-autocast|tf32|
    fp32|bf16-weights (the TF32 switches are the caller's); fused: AdamW's fused kernel. Returns (model, step)."""
    torch.manual_seed(0)
    model = Generator(args.preset, args.k, args.grid, args.classes).to(device)
    if precision == "bf16-weights":
        model = model.to(torch.bfloat16)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embedding" not in n)]
    kw = {"fused": True} if fused else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), **kw)
    ema = [p.detach().float().clone() for p in model.parameters()]
    t = args.grid * args.grid
    tokens = torch.randint(args.k, (args.batch, t), device=device)
    labels = torch.randint(args.classes, (args.batch,), device=device)
    autocast = precision == "bf16-autocast"

    def loss_fn(cond, x):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(cond, x[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, args.k), x.reshape(-1))

    fn = torch.compile(loss_fn) if mode == "compile" else loss_fn

    def step():
        cond = torch.where(torch.rand(args.batch, device=device) < 0.1, args.classes, labels)
        loss = fn(cond, tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            ps = [p.float() for p in model.parameters()] if precision == "bf16-weights" else list(model.parameters())
            torch._foreach_lerp_(ema, ps, 1 - 0.999) if hasattr(torch, "_foreach_lerp_") else [e.lerp_(p, 1 - 0.999) for e, p in zip(ema, ps)]

    return model, step


def run_case(args, device, mode, precision, fused, budget_end):
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    model, step = training_step(args, device, mode, precision, fused)
    params = sum(p.numel() for p in model.parameters())
    t = args.grid * args.grid
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    c0 = time.time()
    for _ in range(args.warmup):
        step()
    sync()
    compile_s = time.time() - c0
    if time.time() > budget_end:
        return None
    per, ms = max(1, (args.steps + 2) // 3), float("inf")
    for _ in range(3):  # fastest of 3 blocks, as snce-bench does
        sync()
        t0 = time.time()
        for _ in range(per):
            step()
        sync()
        ms = min(ms, (time.time() - t0) / per * 1e3)
    flops = model_flops(model, args.batch, t, args.k)
    tflops = flops / (ms / 1e3) / 1e12
    row = {"mode": mode, "precision": precision, "adamw": "fused" if fused else "foreach", "ms": round(ms, 3),
           "tokens_per_s": round(args.batch * t / (ms / 1e3), 1), "model_tflops": round(tflops, 3),
           "mfu": round(tflops / args.peak_tflops, 4), "warmup_s": round(compile_s, 2), "parameters": params}
    del model, step  # step holds the optimizer and the EMA: both go before the cache is emptied
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="B", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--k", type=int, default=16384)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=21)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--cases", default="eager:bf16-autocast:foreach,eager:bf16-autocast:fused,compile:bf16-autocast:fused,eager:tf32:foreach,eager:bf16-weights:foreach",
                    help="mode:precision:adamw, comma-separated (mode eager|compile; precision bf16-autocast|tf32|fp32|bf16-weights; adamw foreach|fused)")
    ap.add_argument("--budget-s", type=float, default=200, help="start no new case after this many seconds")
    ap.add_argument("--quick", action="store_true", help="tiny model on the CPU (eager, fp32)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.quick:
        args.preset, args.batch, args.grid, args.k, args.classes, args.steps, args.warmup = "tiny", 4, 4, 64, 10, 12, 2
        args.cases = "eager:fp32:foreach"
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    end = time.time() + args.budget_s
    rows, skipped = [], []
    for case in args.cases.split(","):
        mode, precision, adamw = case.split(":")
        if time.time() > end or (mode == "compile" and not hasattr(torch, "compile")):
            skipped.append(case)
            continue
        row = run_case(args, device, mode, precision, adamw == "fused", end)
        (rows.append(row) if row else skipped.append(case))
        print(json.dumps(row), flush=True, file=__import__("sys").stderr)
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "preset": args.preset, "batch": args.batch, "tokens": args.grid * args.grid, "k": args.k,
              "classes": args.classes, "steps": args.steps, "warmup": args.warmup, "peak_tflops": args.peak_tflops,
              "flops_formula": "tokens*(6*N_matmul + 12*L*d*S)", "rows": rows, "skipped": skipped}
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
