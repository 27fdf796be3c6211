#!/bin/bash
# Issue #11's profile, on one H200: where a training step's time goes in Snce (C#, Nsight Compute kernel times) and in
# the PyTorch twin (torch.profiler, eager and torch.compile), plus Snce's step time at the study's shapes and the summed
# throughput of N concurrent Snce training processes (the baseline for "many small runs at once").
#
# Prepare here:  ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj && bash tools/slim_device_bundle.sh
# Device calls (carry [".device"]):
#   PART=cs bash tools/device_profile_training.sh   # C#: step times, ncu breakdowns, N concurrent runs  (~6 min)
#   PART=py bash tools/device_profile_training.sh   # PyTorch twin: profiles and eager/compile step times  (~5 min)
#   PART=fused bash tools/device_profile_training.sh  # fused block kernels: GPU check, on/off step times, leak check,
#                                                     # 8 concurrent runs, ncu breakdown, torch.compile in the same call (~8 min)
#   PART=gap bash tools/device_profile_training.sh    # today's full-fused step (blocks, loss, optimizer) at the study's shape
#                                                     # (S, batch 256, 8x8, K 65,536, AR, CE): GPU checks + step time, its ncu
#                                                     # breakdown, and torch.compile (bf16 weights) profiled in the same
#                                                     # categories: where the remaining gap to torch.compile is (~5 min,
#                                                     # estimated: written 2026-12-07, not yet run: no machine started)
#   PART=conc bash tools/device_profile_training.sh   # summed images/s of 1 and 8 concurrent study-shaped runs, 2026-12-01's
#                                                     # step (the issue's baseline) and today's, then 8 under CUDA MPS
#                                                     # (~5 min, estimated: written 2026-12-08, not yet run)
# Writes under $OUT one archive profile-<part>.tar.gz (logs, JSON, markdown) and prints the tables.
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
part=${PART:?PART=cs, py, fused, gap or conc}
w=/tmp/prof-$part; mkdir -p $w
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv > $w/gpu.txt 2>&1
start=$(date +%s)
S="--preset S --batch 256 --grid 8 --classes 10"
B="--preset B --batch 64 --grid 16 --classes 1000 --k 16384"
# Nsight Compute's per-kernel time of a command, stopped after $1 seconds, as CSV into $2 (clocks as they run, every process).
ncu_times() { local s=$1 csv=$2; shift 2; timeout "$s" ncu --csv --metrics gpu__time_duration.sum --clock-control none --target-processes all --log-file "$csv" "$@"; }
if [ "$part" = cs ] || [ "$part" = fused ] || [ "$part" = gap ] || [ "$part" = conc ]; then
  device_unpack || exit 1
  device_dotnet_env
  device_libtorch
  bench() { /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll training --device cuda --precisions bf16 --optimizers flat --sampling false --e2e false "$@"; }
fi
if [ "$part" = gap ]; then
  G="$S --k 65536 --kinds ar --losses ce --loss-implementations fused --fused-blocks on --fused-optimizer on --optimizers flat --precisions bf16 --sampling false --e2e false"
  timeout 120 /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll training --device cuda $G --out $w/step > $w/step.log 2>&1
  echo "step + checks: exit $? after $(( $(date +%s) - start )) s"
  cp $w/step/training.md $OUT/step.md 2>/dev/null   # each phase's table comes back even when a later one runs out of time
  ms=$(python3 -c "import json;print(min(r['ms'] for r in json.load(open('$w/step/training.json'))['rows'] if r.get('what')=='train step'))" 2>/dev/null || echo 0)
  ncu_times 150 $w/ncu-gap.csv \
    /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll training --device cuda $G --check-blocks false --check-optimizer false --warmup 1 --steps 3 --out $w/ncu-bench > $w/ncu-gap.log 2>&1
  echo "ncu: exit $? after $(( $(date +%s) - start )) s"
  python3 tools/profile_training.py --preset S --k 65536 --ncu $w/ncu-gap.csv --ncu-steps 4 --ncu-wall-ms $ms --out $w/ncu-gap.json > $w/ncu-gap.md 2>&1
  cp $w/ncu-gap.md $w/ncu-gap.json $OUT/ 2>/dev/null
  export PYTHONUNBUFFERED=1
  timeout 170 python3 tools/profile_training.py $S --k 65536 --cases compile:bf16-weights:fused --out $w/py-gap.json > $w/py-gap.md 2> $w/py-gap.log
  echo "torch.compile profile: exit $? after $(( $(date +%s) - start )) s"
  tar -C /tmp --exclude="*.csv" -czf $OUT/profile-$part.tar.gz prof-$part
  { grep '^|' $w/step/training.md | grep -i "check\|train step" | cut -c1-200; cat $w/ncu-gap.md $w/py-gap.md; } 2>/dev/null | tail -c 11000
  exit 0
fi
if [ "$part" = conc ]; then
  # Issue #11's "many small runs at once": summed images/s of N concurrent study-shaped training processes (S, batch 256,
  # 8x8, K 16,384, AR, CE, bf16), for the step of 2026-12-01's main (libtorch blocks, reference loss, libtorch optimizer:
  # the issue's baseline, 6,448 images/s for 8 runs on an H200 that day) and today's (fused blocks, loss, optimizer), both
  # in this call; then N = 8 again under CUDA MPS (kernels of different processes share the GPU instead of time-slicing;
  # a user-space daemon, quit at the end; skipped if the binary is missing). Each process times the fastest of 3 blocks of
  # its steps (the bench's rule, as on 2026-12-01); the wall time of each batch of N is printed beside it as a cross-check.
  declare -A cfg=([base]="--fused-blocks off --loss-implementations reference --fused-optimizer off"
                  [now]="--fused-blocks on --loss-implementations fused --fused-optimizer on")
  C="$S --k 16384 --kinds ar --losses ce --check-blocks false --check-optimizer false --warmup 5 --steps ${CONC_STEPS:-240}"
  batch() {  # batch NAME N CONFIG
    local t0=$(date +%s)
    for i in $(seq $2); do
      timeout ${CONC_TIMEOUT_S:-150} bash -c "$(declare -f bench); bench $C ${cfg[$3]} --out $w/$1-$i" > $w/$1-$i.log 2>&1 &
    done
    wait
    echo "$1: $2 x $3 in $(( $(date +%s) - t0 )) s (after $(( $(date +%s) - start )) s)" | tee -a $w/walls.txt
  }
  for c in base now; do batch $c-1 1 $c; batch $c-8 8 $c; done
  if device_mps_start; then
    echo "MPS daemon started" | tee -a $w/walls.txt
    for c in now base; do batch mps-$c-8 8 $c; done
    device_mps_stop
    cp -r $CUDA_MPS_LOG_DIRECTORY $w/mps-log 2>/dev/null
  else
    echo "no nvidia-cuda-mps-control on this machine: MPS rows skipped" | tee -a $w/walls.txt
  fi
  python3 - $w <<'PY' > $w/concurrent.md
import json, sys, glob, re
w = sys.argv[1]
walls = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+): \d+ x \S+ in (\d+) s", open(f"{w}/walls.txt").read(), re.M)}
print("| batch | runs reported | step ms (fastest block per process) | summed images/s | wall of the batch (s) |")
print("|---|---:|---|---:|---:|")
for name in ("base-1", "base-8", "now-1", "now-8", "mps-base-8", "mps-now-8"):
    ms = [r["ms"] for f in sorted(glob.glob(f"{w}/{name}-*/training.json")) for r in json.load(open(f))["rows"] if r.get("what") == "train step"]
    if not ms and name not in walls: continue
    print(f"| {name} | {len(ms)} | " + ", ".join(f"{m:.1f}" for m in ms) + f" | {sum(256 / (m / 1e3) for m in ms):.0f} | {walls.get(name, '–')} |")
PY
  cp $w/concurrent.md $w/walls.txt $OUT/ 2>/dev/null
  tar -C /tmp -czf $OUT/profile-$part.tar.gz prof-$part
  cat $w/walls.txt $w/concurrent.md
  exit 0
fi
if [ "$part" = fused ]; then
  fb() { /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll training --device cuda --optimizers flat --sampling false --e2e false "$@"; }
  timeout 150 bash -c "$(declare -f fb); fb $S --k 1024 --kinds ar,mask --precisions bf16,tf32 --fused-blocks on,off --leak-steps 1000 --out $w/f-s-k1024" > $w/f-s-k1024.log 2>&1
  echo "S K=1024: exit $? after $(( $(date +%s) - start )) s"
  timeout 90 bash -c "$(declare -f fb); fb $S --k 65536 --kinds ar,mask --precisions bf16 --fused-blocks on,off --check-blocks false --out $w/f-s-k65536" > $w/f-s-k65536.log 2>&1
  echo "S K=65536: exit $? after $(( $(date +%s) - start )) s"
  timeout 90 bash -c "$(declare -f fb); fb $B --kinds ar --precisions bf16 --fused-blocks on,off --out $w/f-b" > $w/f-b.log 2>&1
  echo "B: exit $? after $(( $(date +%s) - start )) s"
  for i in $(seq 8); do
    timeout 120 bash -c "$(declare -f fb); fb $S --k 16384 --kinds ar --precisions bf16 --fused-blocks on --check-blocks false --warmup 5 --steps 150 --out $w/fconc8-$i" > $w/fconc8-$i.log 2>&1 &
  done
  wait
  echo "8 concurrent: after $(( $(date +%s) - start )) s"
  ncu_times 100 $w/ncu-fused-s.csv \
    /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll training --device cuda --precisions bf16 --optimizers flat --fused-blocks on --check-blocks false --sampling false --e2e false \
    $S --k 16384 --kinds ar --warmup 1 --steps 3 --out $w/ncu-fused-bench > $w/ncu-fused.log 2>&1
  python3 tools/profile_training.py --ncu $w/ncu-fused-s.csv --ncu-steps 4 --out $w/ncu-fused-s.json > $w/ncu-fused-s.md 2>&1
  echo "ncu: after $(( $(date +%s) - start )) s"
  export PYTHONUNBUFFERED=1
  for k in 1024 65536; do
    timeout 100 python3 tools/bench_training.py $S --k $k --budget-s 60 --cases compile:bf16-autocast:fused --out $w/pyc-s-k$k.json > /dev/null 2> $w/pyc-s-k$k.log
  done
  timeout 100 python3 tools/bench_training.py $B --budget-s 60 --cases compile:bf16-autocast:fused --out $w/pyc-b.json > /dev/null 2> $w/pyc-b.log
  echo "torch.compile: after $(( $(date +%s) - start )) s"
  python3 - $w <<'PY' > $w/concurrent.md
import json, sys, glob
ms = [r["ms"] for f in sorted(glob.glob(f"{sys.argv[1]}/fconc8-*/training.json")) for r in json.load(open(f))["rows"] if r.get("what") == "train step"]
print(f"| 8 concurrent, fused | {len(ms)} runs | step ms " + ", ".join(f"{m:.1f}" for m in ms) + f" | summed images/s {sum(256 / (m / 1e3) for m in ms):.0f} |")
PY
  { for f in $w/f-*/training.md; do echo "== $f"; grep '^|' $f | cut -c1-160; done; grep -h '"ms"' $w/pyc-*.log | cut -c1-120; cat $w/concurrent.md; head -14 $w/ncu-fused-s.md; } 2>/dev/null | tail -c 11000
  tar -C /tmp --exclude="*.csv" -czf $OUT/profile-$part.tar.gz prof-$part
  exit 0
fi
if [ "$part" = cs ]; then
  # 1. Step times at the study's shapes and preset B.
  for k in 1024 16384 65536; do
    timeout 100 bash -c "$(declare -f bench); bench $S --k $k --kinds ar,mask --out $w/s-k$k" > $w/step-s-k$k.log 2>&1
  done
  timeout 100 bash -c "$(declare -f bench); bench $B --kinds ar --out $w/b" > $w/step-b.log 2>&1
  echo "step times done after $(( $(date +%s) - start )) s"
  # 2. Kernel breakdown of the C# step with Nsight Compute (4 steps: 1 warmup + 3 timed; setup kernels included).
  for shape in s b; do
    args=$S; [ $shape = b ] && args=$B; k=""; [ $shape = s ] && k="--k 16384"
    ncu_times 150 $w/ncu-$shape.csv \
      /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll training --device cuda --precisions bf16 --optimizers flat --sampling false --e2e false \
      $args $k --kinds ar --warmup 1 --steps 3 --out $w/ncu-$shape-bench > $w/ncu-$shape.log 2>&1
    echo "ncu $shape: exit $? after $(( $(date +%s) - start )) s"
    python3 tools/profile_training.py --ncu $w/ncu-$shape.csv --ncu-steps 4 --out $w/ncu-$shape.json > $w/ncu-$shape.md 2>&1
  done
  # 3. N concurrent Snce training processes at the study's shape (AR, K 16,384): summed images/s.
  for n in 1 8; do
    for i in $(seq $n); do
      timeout 200 bash -c "$(declare -f bench); bench $S --k 16384 --kinds ar --warmup 5 --steps 150 --out $w/conc$n-$i" > $w/conc$n-$i.log 2>&1 &
    done
    wait
    echo "concurrent $n done after $(( $(date +%s) - start )) s"
  done
  python3 - $w <<'PY' > $w/concurrent.md
import json, sys, glob
w = sys.argv[1]
for n in (1, 8):
    ms = []
    for f in sorted(glob.glob(f"{w}/conc{n}-*/training.json")):
        rows = json.load(open(f))["rows"]
        ms += [r["ms"] for r in rows if r.get("what") == "train step"]
    ips = sum(256 / (m / 1e3) for m in ms)
    print(f"| {n} concurrent | {len(ms)} runs reported | step ms " + ", ".join(f"{m:.1f}" for m in ms) + f" | summed images/s {ips:.0f} |")
PY
else
  export PYTHONUNBUFFERED=1
  for k in 1024 16384 65536; do
    timeout 150 python3 tools/profile_training.py $S --k $k --cases eager:bf16-weights:foreach,compile:bf16-autocast:fused --out $w/py-s-k$k.json > $w/py-s-k$k.md 2> $w/py-s-k$k.log
    echo "py S K=$k: exit $? after $(( $(date +%s) - start )) s"
  done
  timeout 150 python3 tools/profile_training.py $B --cases eager:bf16-weights:foreach,compile:bf16-autocast:fused --out $w/py-b.json > $w/py-b.md 2> $w/py-b.log
  echo "py B: exit $? after $(( $(date +%s) - start )) s"
  for k in 1024 65536; do
    timeout 120 python3 tools/bench_training.py $S --k $k --budget-s 80 --cases eager:bf16-autocast:fused,compile:bf16-autocast:fused,eager:bf16-weights:foreach --out $w/bench-s-k$k.json > /dev/null 2> $w/bench-s-k$k.log
  done
  echo "py bench: after $(( $(date +%s) - start )) s"
fi
tar -C /tmp --exclude="*.csv" -czf $OUT/profile-$part.tar.gz prof-$part
cp $w/ncu-*.csv.gz $OUT/ 2>/dev/null
{ for f in $w/*/training.md; do echo "$(basename $(dirname $f)): $(grep '| train step' $f | cut -c1-80 | tr '\n' ' ')"; done; for f in $w/*.md; do echo "== $f"; grep -v '^$' "$f" | head -30; done; } 2>/dev/null | tail -c 11000
