#!/bin/bash
# Issue #12 in ONE device call (≤ 8 min): the loss bench's before/after table and an Nsight Systems kernel summary.
#
# Before the device call, on the development machine, from the repository root:
#   ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj        # -> .device/ (git-ignored: carry it)
# Device call (from the repository root, carry [".device"], timeout_s 480):
#   bash tools/device_loss_profile.sh
#
# 1. snce-bench loss (check first, then each case in a fresh process), bf16, K = 65,536 and 262,144:
#    ce-fused(-before), snce-fused(-before), snce-fused-topk (host search), snce-fused-topk-rowstep-before (the kernel's
#    row-step selection before the per-thread candidates: scores read twice in every row) and snce-fused-topk-rowstep
#    (after: read once where pass 1's candidates certify the top-k). ce-fused and snce-fused run the same code before
#    and after; they are the baselines of the ratios.
# 2. nsys (CUDA trace only; measured 2026-12-03: the device image has no nsys, so this part only says so — ncu per kernel is
#    PART=profile bash tools/device_loss_bench.sh) of exactly one timed fwd+bwd step (SNCE_PROFILE_STEPS=1 brackets it with
#    cuProfilerStart/Stop; capture-range=cudaProfilerApi) of snce-fused at K = 262,144, then of ce-fused and
#    snce-fused-topk-rowstep while time is left: per-kernel summary (cuda_gpu_kern_sum) and the launch sequence
#    (cuda_gpu_trace).
# Everything lands in $OUT/loss-profile.tar.gz (one archive); stdout ends with the tables to read.
#   BENCH_BUDGET_S=250  KS=65536,262144  NSYS_METHODS=snce-fused,ce-fused,snce-fused-topk-rowstep  STOP_AT_S=430
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
work=$(mktemp -d)
device_require_bench_bundle "$work/loss_cs.log" || { tar -C "$work" -czf "$OUT/loss-profile.tar.gz" .; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.mem --format=csv > "$work/gpu.txt" 2>&1

# 1. The before/after table.
BENCH_BUDGET_S=${BENCH_BUDGET_S:-250}
METHODS=ce-fused-before,ce-fused,snce-fused-before,snce-fused,snce-fused-topk,snce-fused-topk-rowstep-before,snce-fused-topk-rowstep
timeout $((BENCH_BUDGET_S + 60)) bash .device/run.sh loss --device cuda --dtypes bf16 --ks "${KS:-65536,262144}" --methods "$METHODS" \
  --budget-s "$BENCH_BUDGET_S" --name loss --out "$work" > "$work/loss_cs.log" 2>&1
echo "snce-bench loss: exit $? after $(elapsed) s" | tee -a "$work/loss_cs.log"

# 2. nsys, in-process (one process per method), only the bracketed step.
device_unpack || exit 1
device_dotnet_env
device_libtorch_path
export SNCE_PROFILE_STEPS=1
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
STOP_AT_S=${STOP_AT_S:-430}
if [ -z "$NSYS" ]; then echo "nsys not found on PATH, /usr/local/cuda/bin or /opt/nvidia/nsight-systems (the device image has none: KINDS.md); per-kernel times: PART=profile bash tools/device_loss_bench.sh (ncu)" | tee "$work/nsys.log"
else
  "$NSYS" --version > "$work/nsys.log" 2>&1
  NSYS_METHODS=${NSYS_METHODS:-snce-fused,ce-fused,snce-fused-topk-rowstep}
  for m in ${NSYS_METHODS//,/ }; do
    [ "$(elapsed)" -gt $((STOP_AT_S - 60)) ] && { echo "nsys $m: skipped, $(elapsed) s spent" | tee -a "$work/nsys.log"; continue; }
    timeout 120 "$NSYS" profile --trace=cuda --sample=none --cpuctxsw=none --capture-range=cudaProfilerApi --capture-range-end=stop \
      --force-overwrite true -o "$work/nsys-$m" \
      /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll loss --device cuda --in-process --check false --dtypes bf16 --ks 262144 \
      --methods "$m" --warmup 1 --repeats 1 --name prof-$m --out "$work/prof" >> "$work/nsys.log" 2>&1
    echo "nsys $m: exit $? after $(elapsed) s" | tee -a "$work/nsys.log"
    for report in cuda_gpu_kern_sum cuda_gpu_trace; do
      timeout 60 "$NSYS" stats --report $report --format csv --force-export true -o "$work/nsys-$m" "$work/nsys-$m.nsys-rep" >> "$work/nsys.log" 2>&1
    done
  done
fi

# Summary (also in the archive): before/after ratios and the per-kernel times.
python3 - "$work" > "$work/summary.md" <<'PY'
import csv, glob, json, os, sys
work = sys.argv[1]
try:
    rows = json.load(open(f"{work}/loss.json"))["rows"]
except Exception as e:
    rows = []; print(f"no loss.json: {e}")
by = {(r["method"], r["K"]): r for r in rows}
print("| K | method | time ms | × ce-fused | × snce-fused | mem GiB | mem × ce-fused | status |\n|---:|---|---:|---:|---:|---:|---:|---|")
for (m, k), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    t, g = r.get("time_ms"), r.get("mem_gib")
    s = by.get(("snce-fused", k), {}).get("time_ms")
    f = lambda v, p=2: "" if v is None else f"{v:.{p}f}"
    print(f"| {k} | {m} | {f(t)} | {f(r.get('x_ce_fused'), 3)} | {f(t / s if t and s else None, 3)} | {f(g)} | {f(r.get('mem_x_ce_fused'), 3)} | {r.get('status')} |")
for path in sorted(glob.glob(f"{work}/nsys-*_cuda_gpu_kern_sum.csv")):
    m = os.path.basename(path)[len("nsys-"):-len("_cuda_gpu_kern_sum.csv")]
    recs = list(csv.DictReader(open(path)))
    if not recs: print(f"\n{m}: empty kernel summary"); continue
    tcol = next(c for c in recs[0] if c.startswith("Total Time"))
    total = sum(float(r[tcol]) for r in recs)
    print(f"\n### nsys {m}, K = 262,144, one fwd+bwd: {total / 1e6:.2f} ms of kernel time, {sum(int(r['Instances']) for r in recs)} launches\n")
    print("| kernel | launches | total ms | % |\n|---|---:|---:|---:|")
    for r in sorted(recs, key=lambda r: -float(r[tcol]))[:14]:
        print(f"| {r['Name'][:70]} | {r['Instances']} | {float(r[tcol]) / 1e6:.3f} | {100 * float(r[tcol]) / total:.1f} |")
PY
rm -rf "$work/prof"
tar -C "$work" -czf "$OUT/loss-profile.tar.gz" . && echo "archive: $(du -h "$OUT/loss-profile.tar.gz" | cut -f1) after $(elapsed) s"
grep -E "^(Check|CHECK|The CUDA|The kernel)|FAILED" "$work/loss_cs.log" | cut -c1-400 | head -12
cat "$work/summary.md"
