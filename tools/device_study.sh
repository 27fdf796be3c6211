#!/bin/bash
# The GPU study (docs/RESULTS.md) on one H200, in two device calls that share the warm machine's /tmp:
# the app + .NET runtime + data (~58 MB) and the ResNet-18 weights (~59 MB compressed) do not fit the 64 MiB that
# one call can carry together.
#
# Prepare here (repository root):
#   ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj    # the benchmarks and the snce CLI
#   bash tools/slim_device_bundle.sh                                 # drop ResNet18.onnx and ONNX Runtime from the bundle
#   bash tools/pack_device_data.sh fashion-mnist                     # .devdata/fashion-mnist.tar.xz
#   mkdir -p .devonnx && xz -T2 -6 -c ~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx > .devonnx/ResNet18.onnx.xz
#   bash tools/device_study.sh split-onnx      # .devonnx-a/ + .devonnx-b/ (halves): the tracked tree (> 8 MB) + the whole
#                                              # 58.6 MB file no longer fit one call (refused 2026-12-02)
# Call 0 (carry .devdata), only when call 1 is refused as too large:  bash tools/device_study.sh data
# Call 1 (carry .device, .devdata; or .device alone after call 0):  bash tools/device_study.sh prepare      tokenizers, shards, classifier; then the benchmarks (BENCH=0: not)
#   (it only fits with the runtime recompressed: DOTNET_XZ9=1 bash tools/slim_device_bundle.sh)
# Call 2 (carry .devonnx-a), within the 30 s the machine stays warm:  bash tools/device_study.sh onnx-a   (stages half A in /tmp)
# Call 3 (carry .devonnx-b):  bash tools/device_study.sh train    (joins the halves; later train calls carry nothing)
# Outputs under $OUT: prepare.tar.gz / study.tar.gz (STUDY.md, study.json, report/, samples/, runs/*/metrics.jsonl, logs/).
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
cd "$(dirname "$0")/.."
if [ "${1:-}" = split-onnx ]; then
  # Here, not on the device: halves of .devonnx/ResNet18.onnx.xz that each fit one call with the tracked tree.
  [ -f .devonnx/ResNet18.onnx.xz ] || { echo "make .devonnx/ResNet18.onnx.xz first (see the header)" >&2; exit 1; }
  mkdir -p .devonnx-a .devonnx-b
  ex="$(git rev-parse --git-common-dir)/info/exclude"
  for d in .devonnx .devonnx-a .devonnx-b; do grep -qx "/$d/" "$ex" 2>/dev/null || echo "/$d/" >> "$ex"; done
  split -b 30000000 -d .devonnx/ResNet18.onnx.xz /tmp/rn. && mv /tmp/rn.00 .devonnx-a/ && mv /tmp/rn.01 .devonnx-b/
  ls -la .devonnx-a .devonnx-b; exit 0
fi
: "${OUT:?OUT must name the output folder}"
phase=${1:?usage: device_study.sh data|prepare|onnx-a|train (split-onnx here)}
study=/tmp/study
# Default: ONE cell of the issue-10 grid (AR, K = 16,384, CE and SNCE, seed 0) at the gpu recipe; pick other cells with
# --codebooks/--objectives/--losses/--seeds. Measured 2026-12-02 (docs/RESULTS.md section 0, K = 65,536): prepare 65 s;
# one objective's two runs train, evaluate 8 times, run the n = 5,000 finals and the grids in ~350-375 s: one `train` call
# (TIME_LIMIT_S=470 keeps it inside the 10-minute limit; a call that stops early resumes with the same command). Several
# objectives: run `train` again with another --objectives in STUDY_ARGS; the runs share /tmp/study, and `snce report`
# merges them. --parallel 4 with four runs (2026-12-03, docs/RESULTS.md section 0, tuning): 11.4-11.9 steps/s each (46-47
# summed, as two runs at --parallel 2), but one run's evaluations overlap the others' training, so four runs with their
# finals took 470 + 136 s and 455 + 125 s (two train calls each): ~150 s per run against ~180 s at --parallel 2.
# The gpu preset trains with dropout 0.1 since 2026-12-03; add --dropout 0 to reproduce the cells run before.
# On one H100 (2026-12-08, K = 4,096 then 1,024, --objectives ar,mask --parallel 4): four runs with finals in ONE train call
# (479 s and 426 s at K = 4,096 / 1,024). A second cell on the same warm machine: prepare (carry .device) then train carrying
# nothing: the ResNet-18 weights stay in the unpacked app.
STUDY_ARGS=${STUDY_ARGS:-"--preset gpu --codebooks 16384 --objectives ar --focus-losses none --sweep-perplexities none --headline-seeds none --parallel 2"}
device_dotnet_env
export PYTHONUNBUFFERED=1
device_libtorch
start=$(date +%s)
case $phase in
  prepare)
    mkdir -p /tmp/snce-data
    device_unpack || exit 1
    if [ -f .devdata/fashion-mnist.tar.xz ]; then tar -C /tmp/snce-data -xJf .devdata/fashion-mnist.tar.xz || exit 1
    elif [ ! -f /tmp/snce-data/fashion-mnist/dataset.json ]; then echo "no data: carry .devdata, or run 'data' (carry .devdata) first" >&2; exit 1
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt"
    timeout ${PREP_TIMEOUT_S:-240} bash -c "$(declare -f snce); snce study $STUDY_ARGS --data-dir /tmp/snce-data --device cuda --prepare-only --out $study" > "$OUT/prepare.log" 2>&1
    echo "prepare: exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/prepare.log"
    tar -C $study -czf "$OUT/prepare.tar.gz" --exclude='*.safetensors' --exclude='*.npy' tokenizers classifier.json logs study-config.json 2>/dev/null
    # The benchmarks, on the same machine while it is held: training step vs PyTorch, then the loss at bf16 (memory re-measured).
    # BENCH=0 skips them (they were measured already and the GPU time is wanted for the study).
    [ "${BENCH:-1}" = 0 ] && { tail -n 25 "$OUT/prepare.log"; exit 0; }
    mkdir -p /tmp/bench
    CS_TIMEOUT_S=${CS_TIMEOUT_S:-150} PY_BUDGET_S=${PY_BUDGET_S:-70} OUT=/tmp/bench bash tools/device_training_bench.sh > /dev/null 2>&1
    echo "training bench done after $(( $(date +%s) - start )) s"
    timeout ${LOSS_TIMEOUT_S:-110} /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll loss --device cuda --dtypes bf16 --budget-s 90 --name loss-bf16 --out /tmp/bench > /tmp/bench/loss-bf16.log 2>&1
    echo "loss bench done after $(( $(date +%s) - start )) s"
    tar -C /tmp/bench -czf "$OUT/bench.tar.gz" . ;;
  train)
    [ -x /tmp/dn/dotnet ] && [ -d $study/shards ] || { echo "the prepare call's files are gone (the machine was given back): run 'prepare' again" >&2; exit 1; }
    device_resnet_weights || exit 1
    # MPS=1: the --parallel runs share the GPU through CUDA MPS (a user-space daemon, quit when the call ends) instead of
    # time-slicing it; written 2026-12-08 beside PART=conc of device_profile_training.sh, which measures whether it pays.
    if [ "${MPS:-0}" = 1 ]; then
      if device_mps_start; then echo "MPS daemon started" | tee "$OUT/mps.txt"; else echo "MPS=1: no nvidia-cuda-mps-control, running without" | tee "$OUT/mps.txt"; fi
    fi
    snce study $STUDY_ARGS --data-dir /tmp/snce-data --device cuda --time-limit ${TIME_LIMIT_S:-430} --out $study > "$OUT/study.log" 2>&1
    echo "study: exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/study.log"
    # Globs expand inside the study folder (a first GPU run lost runs/*/metrics.jsonl by expanding them in the repo).
    (cd $study && tar -czf "$OUT/study.tar.gz" STUDY.md study.json study-config.json report samples logs classifier.json tokenizers/*.png \
      tokenizers/*/eval.json tokenizers/*/train.json tokenizers/*.json runs/*/metrics.jsonl runs/*/config.json runs/*/checkpoint/checkpoint.json runs/*/best/best.json runs/*/final-*.json 2>/dev/null) ;;
  data)
    # When the tracked tree has grown so that .device + .devdata no longer fit one call (refused 2026-12-02 at 64.03 MiB):
    # stage the data first (carry .devdata), then 'prepare' carrying .device only.
    mkdir -p /tmp/snce-data && tar -C /tmp/snce-data -xJf .devdata/fashion-mnist.tar.xz || exit 1
    echo "data staged in /tmp/snce-data; next: prepare, carrying .device"; exit 0 ;;
  onnx-a)
    mkdir -p $DT/onnx-parts && cp .devonnx-a/rn.00 $DT/onnx-parts/ || exit 1
    echo "half A staged in $DT/onnx-parts; next: train, carrying .devonnx-b"; exit 0 ;;
  *) echo "unknown phase '$phase'; use data, prepare, onnx-a, train (or split-onnx here)" >&2; exit 2 ;;
esac
tail -n 25 "$OUT/$([ $phase = prepare ] && echo prepare || echo study).log"
