#!/bin/bash
# The loss benchmarks on the GPU machine, C# (snce-bench loss) and PyTorch (tools/bench_loss.py) side by side.
# Writes 6 files under $OUT: gpu.txt, loss.json, loss.md, loss_cs.log, loss_pytorch.json, loss_pytorch.log.
#
# Before the device call, on the development machine, from the repository root:
#   ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj        # -> .device/ (git-ignored: carry it)
# Device call (from the repository root, carry [".device"]):
#   bash tools/device_loss_bench.sh
# Wall time: about 0.5 min setup + at most ~5.5 min C# (its own budget stops new cases after CS_BUDGET_S) + at most
# ~2.5 min PyTorch (PY_BUDGET_S); set PYTORCH=0 to skip the PyTorch part.
set -uo pipefail
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
CS_BUDGET_S=${CS_BUDGET_S:-300}
PY_BUDGET_S=${PY_BUDGET_S:-140}
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.mem --format=csv > "$OUT/gpu.txt" 2>&1
start=$(date +%s)
[ -f .device/run.sh ] || { echo "no .device/run.sh: run ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj first and carry .device" | tee "$OUT/loss_cs.log"; exit 1; }
timeout $((CS_BUDGET_S + 100)) bash .device/run.sh loss --device cuda --budget-s "$CS_BUDGET_S" --out "$OUT" > "$OUT/loss_cs.log" 2>&1
echo "snce-bench loss: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/loss_cs.log"
if [ "${PYTORCH:-1}" != 0 ]; then
  timeout $((PY_BUDGET_S + 40)) python3 tools/bench_loss.py --budget-s "$PY_BUDGET_S" --out "$OUT/loss_pytorch.json" > /dev/null 2> "$OUT/loss_pytorch.log"
  echo "bench_loss.py: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/loss_pytorch.log"
fi
# What the reply's output tail shows: the C# table and the PyTorch rows.
tail -n 60 "$OUT/loss_cs.log"
[ -f "$OUT/loss_pytorch.log" ] && tail -n 25 "$OUT/loss_pytorch.log"
exit 0
