#!/bin/bash
# Generator training and sampling benchmarks on the GPU machine: C# (snce-bench training) and PyTorch
# (tools/bench_training.py, eager and torch.compile) side by side, same model and shapes (preset B, batch 64,
# 16x16 tokens, K = 16,384, 1,000 classes). Writes under $OUT: gpu.txt, training.json, training.md,
# training_cs.log, training_pytorch.json, training_pytorch.log (6 files).
#
# Before the device call, on the development machine, from the repository root:
#   ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj        # -> .device/ (git-ignored: carry it)
# Device call (from the repository root, carry [".device"]):
#   bash tools/device_training_bench.sh
# Wall time: C# ≈ 1.5–2.5 min (hard stop CS_TIMEOUT_S), PyTorch ≤ PY_BUDGET_S + compile of the last case
# (hard stop at PY_BUDGET_S + 90 s); about 5 min in all. PYTORCH=0 skips PyTorch, CS=0 skips C#.
# The fused loss inside the step (issue 11), one implementation per invocation so device_mem_gib is that one's peak:
#   CS_ARGS="--preset S --batch 256 --grid 8 --k 65536 --classes 10 --losses ce,snce --loss-implementations fused --fused-blocks on --optimizers flat --sampling false --e2e false" PYTORCH=0 bash tools/device_training_bench.sh
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
CS_TIMEOUT_S=${CS_TIMEOUT_S:-170}
PY_BUDGET_S=${PY_BUDGET_S:-100}
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.mem --format=csv > "$OUT/gpu.txt" 2>&1
start=$(date +%s)
if [ "${CS:-1}" != 0 ]; then
  device_require_bench_bundle "$OUT/training_cs.log" || exit 1
  timeout "$CS_TIMEOUT_S" bash .device/run.sh training --device cuda --out "$OUT" ${CS_ARGS:-} > "$OUT/training_cs.log" 2>&1
  echo "snce-bench training: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/training_cs.log"
fi
if [ "${PYTORCH:-1}" != 0 ]; then
  timeout $((PY_BUDGET_S + 90)) python3 tools/bench_training.py --budget-s "$PY_BUDGET_S" --out "$OUT/training_pytorch.json" ${PY_ARGS:-} > /dev/null 2> "$OUT/training_pytorch.log"
  echo "bench_training.py: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/training_pytorch.log"
fi
# What the reply's output tail shows: the C# table and the PyTorch rows.
tail -n 30 "$OUT/training_cs.log" 2>/dev/null
tail -n 12 "$OUT/training_pytorch.log" 2>/dev/null
exit 0
