#!/usr/bin/env python3
"""Helpers for tools/device_distributed.sh (the standard library only, no Snce code):

  shards DIR --count N --k K --grid G --classes C [--seed S]
      Learnable synthetic token shards in Snce's format (snce-tokens/1): image m of class c has
      x_i = (c * stride + i + noise) mod K, noise in {0, 1} with probability 0.1 (as tests' GeneratorFixtures);
      the last 10 % are the validation split. No tokenizer is needed to train on them.
  compare RUN_A RUN_B
      Compares the two runs' checkpoint tensors (model, ema, optimizer, rng safetensors) byte for byte and
      their train losses in metrics.jsonl; prints one JSON object.
  curves RUN [RUN ...]
      Train-loss curves and throughput (steps/s median over the log records after the first two) as JSON.
  intact RUN
      Whether RUN/checkpoint is a complete checkpoint: checkpoint.json parses and every safetensors file's
      header and data sizes agree with the file.
"""
import argparse, array, json, math, os, random, statistics, struct, sys


def save_npy(path, descr, shape, values):
    """A C-order little-endian .npy (format 1.0) of `values` (an array.array of the dtype `descr` names)."""
    if sys.byteorder != "little":
        values.byteswap()
    shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(values.tobytes())


def shards(a):
    rng = random.Random(a.seed)
    t = a.grid * a.grid
    labels = [rng.randrange(a.classes) for _ in range(a.count)]
    stride = max(1, a.k // max(1, a.classes))
    tokens = array.array("i", ((c * stride + i + (1 if rng.random() < 0.1 else 0)) % a.k for c in labels for i in range(t)))
    split = array.array("B", (1 if m >= a.count - a.count // 10 else 0 for m in range(a.count)))
    codebook = array.array("f", (rng.gauss(0, 1) for _ in range(a.k * 8)))
    os.makedirs(a.dir, exist_ok=True)
    save_npy(os.path.join(a.dir, "tokens.npy"), "<i4", (a.count, t), tokens)
    save_npy(os.path.join(a.dir, "labels.npy"), "<i8", (a.count,), array.array("q", labels))
    save_npy(os.path.join(a.dir, "split.npy"), "|u1", (a.count,), split)
    save_npy(os.path.join(a.dir, "codebook.npy"), "<f4", (a.k, 8), codebook)
    info = {
        "format": "snce-tokens/1", "tokenizer": "/nonexistent/synthetic-tokenizer", "data": "synthetic",
        "codebook_size": a.k, "code_dim": 8, "metric": "l2", "grid": [a.grid, a.grid], "image_size": a.grid * 4,
        "channels": 3, "classes": [f"c{i}" for i in range(a.classes)], "count": a.count, "latents": "none",
        "neighbors_k": 0, "bytes_per_image": {},
    }
    with open(os.path.join(a.dir, "shards.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps({"shards": a.dir, "count": a.count, "k": a.k, "grid": a.grid, "classes": a.classes}))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return header, data


def max_abs_diff(dtype, ra, rb):
    """The largest |a - b| over two raw tensors of a float dtype (None for other dtypes)."""
    if dtype == "BF16":  # the upper half of an fp32
        ua, ub = array.array("H", ra), array.array("H", rb)
        fa = array.array("f", array.array("I", (u << 16 for u in ua)).tobytes())
        fb = array.array("f", array.array("I", (u << 16 for u in ub)).tobytes())
    elif dtype in ("F32", "F64"):
        code = "f" if dtype == "F32" else "d"
        fa, fb = array.array(code, ra), array.array(code, rb)
    else:
        return None
    return max((abs(x - y) for x, y in zip(fa, fb) if not (math.isnan(x) and math.isnan(y))), default=0.0)


def train_losses(run):
    out = []
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        return out
    for line in open(path):
        r = json.loads(line)
        if r.get("split") == "train":
            out.append((r["step"], r["loss"], r.get("steps_per_s")))
    return out


def compare(a):
    result = {"a": a.run_a, "b": a.run_b, "files": {}}
    equal = True
    for name in ["model.safetensors", "ema.safetensors", "optimizer.safetensors", "rng.safetensors"]:
        pa, pb = (os.path.join(r, "checkpoint", name) for r in (a.run_a, a.run_b))
        if not (os.path.exists(pa) and os.path.exists(pb)):
            result["files"][name] = {"missing": [p for p in (pa, pb) if not os.path.exists(p)]}
            equal = False
            continue
        ha, da = read_safetensors(pa)
        hb, db = read_safetensors(pb)
        f = {"tensors": len(ha), "identical": 0, "different": [], "max_abs_diff": 0.0}
        for key, ea in ha.items():
            eb = hb.get(key)
            if eb is None or eb["dtype"] != ea["dtype"] or eb["shape"] != ea["shape"]:
                f["different"].append({"tensor": key, "why": "missing or another dtype/shape in b"})
                continue
            ra = da[ea["data_offsets"][0]:ea["data_offsets"][1]]
            rb = db[eb["data_offsets"][0]:eb["data_offsets"][1]]
            if ra == rb:
                f["identical"] += 1
                continue
            d = max_abs_diff(ea["dtype"], ra, rb)
            f["different"].append({"tensor": key, "dtype": ea["dtype"], "max_abs_diff": d})
            if d is not None:
                f["max_abs_diff"] = max(f["max_abs_diff"], d)
        f["different"] = f["different"][:10]
        equal = equal and f["identical"] == len(ha) == len(hb)
        result["files"][name] = f
    la, lb = train_losses(a.run_a), train_losses(a.run_b)
    result["train_losses_equal"] = [x[:2] for x in la] == [x[:2] for x in lb] and len(la) > 0
    result["loss_max_abs_diff"] = max((abs(x[1] - y[1]) for x, y in zip(la, lb)), default=None)
    result["bitwise_equal"] = equal
    print(json.dumps(result, indent=2))


def curves(a):
    out = {}
    for run in a.runs:
        ls = train_losses(run)
        rates = [x[2] for x in ls[2:] if x[2] is not None]
        out[run] = {"steps": [x[0] for x in ls], "loss": [x[1] for x in ls],
                    "steps_per_s_median": statistics.median(rates) if rates else None}
    print(json.dumps(out, indent=2))


def intact(a):
    res = check_folder(os.path.join(a.run, "checkpoint"))
    res["leftovers"] = sorted(n for n in os.listdir(a.run) if n.startswith("checkpoint") and n != "checkpoint")
    olds = [n for n in res["leftovers"] if n.startswith("checkpoint.old-")]
    if not res["ok"] and olds:  # killed between CheckpointFolder's two renames: the next load moves the old one back
        res["recoverable_from"] = check_folder(os.path.join(a.run, olds[0]))
    print(json.dumps(res, indent=2))


def check_folder(ck):
    res = {"checkpoint": ck, "ok": True, "problems": []}
    try:
        m = json.load(open(os.path.join(ck, "checkpoint.json")))
        res["step"] = m.get("state", {}).get("step")
    except Exception as e:  # noqa: BLE001 - reported, not raised
        res["ok"] = False
        res["problems"].append(f"checkpoint.json: {e}")
    for name in ["model.safetensors", "ema.safetensors", "optimizer.safetensors", "rng.safetensors"]:
        p = os.path.join(ck, name)
        try:
            h, data = read_safetensors(p)
            end = max((e["data_offsets"][1] for e in h.values()), default=0)
            if end != len(data):
                res["ok"] = False
                res["problems"].append(f"{name}: header says {end} data bytes, file has {len(data)}")
        except Exception as e:  # noqa: BLE001
            res["ok"] = False
            res["problems"].append(f"{name}: {e}")
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("shards")
    s.add_argument("dir")
    s.add_argument("--count", type=int, default=4096)
    s.add_argument("--k", type=int, default=1024)
    s.add_argument("--grid", type=int, default=8)
    s.add_argument("--classes", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("run_a")
    c.add_argument("run_b")
    v = sub.add_parser("curves")
    v.add_argument("runs", nargs="+")
    i = sub.add_parser("intact")
    i.add_argument("run")
    a = p.parse_args()
    {"shards": shards, "compare": compare, "curves": curves, "intact": intact}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
