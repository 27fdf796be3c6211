#!/bin/bash
# The loss benchmarks on the GPU machine: C# (snce-bench loss) with the old and new top-k paths side by side, PyTorch
# (tools/bench_loss.py) beside them, and (PART=profile) an Nsight Compute breakdown of one step per method.
#
# Before the device call, on the development machine, from the repository root:
#   ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj        # -> .device/ (git-ignored: carry it)
# Device calls (from the repository root, carry [".device"]):
#   bash tools/device_loss_bench.sh                # PART=bench (default): the table, ~7-8 min
#   PART=profile bash tools/device_loss_bench.sh   # ncu: per-kernel time, DRAM bytes, occupancy of one step, ~4-6 min
#
# PART=bench writes under $OUT: gpu.txt, loss.json/.md + loss_cs.log (the main table: check first, then KS x DTYPES x
# METHODS, anchors random), loss-code.json/.md and loss-near.json/.md (+ logs: the top-k paths again at K_EXTRA with
# code-anchored and near-code latent anchors, where the neighbor table applies), loss_pytorch.json/.log.
#   KS=65536,262144  DTYPES=bf16  METHODS=ce-fused,snce-fused,snce-fused-topk,snce-fused-topk-rowstep,snce-fused-topk-table
#   CS_BUDGET_S=300  K_EXTRA=262144  EXTRA=1 (0 skips the anchor runs)  PYTORCH=1 (0 skips it)  PY_BUDGET_S=100
# Methods: snce-fused-topk = the original top-k (host search over all K: score matmuls + torch.topk); -rowstep = the
# kernel selects the top-k from the block's scores while it reads the logits (new); -table = a CodeNeighbors table
# (new; its from_table column says how many rows it served). ce-fused and snce-fused are unchanged by issue #12.
# PART=profile writes ncu-<method>.csv (raw) and profile.md (per kernel: launches, ms, GB read/written, GB/s,
# occupancy) for one timed step of each method at K_PROFILE=262144, bf16, after one warm-up step (not profiled).
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
PART=${PART:-bench}
device_require_bench_bundle "$OUT/loss_cs.log" || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.mem --format=csv > "$OUT/gpu.txt" 2>&1
start=$(date +%s)
METHODS=${METHODS:-ce-fused,snce-fused,snce-fused-topk,snce-fused-topk-rowstep,snce-fused-topk-table}

if [ "$PART" = bench ]; then
  CS_BUDGET_S=${CS_BUDGET_S:-300}
  timeout $((CS_BUDGET_S + 120)) bash .device/run.sh loss --device cuda --dtypes "${DTYPES:-bf16}" --ks "${KS:-65536,262144}" --methods "$METHODS" \
    --budget-s "$CS_BUDGET_S" --out "$OUT" > "$OUT/loss_cs.log" 2>&1
  echo "snce-bench loss: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/loss_cs.log"
  if [ "${EXTRA:-1}" != 0 ]; then
    # The kernels were checked by the main run in this call; the anchor runs skip the check.
    for anchors in code near; do
      timeout 150 bash .device/run.sh loss --device cuda --dtypes bf16 --ks "${K_EXTRA:-262144}" --anchors $anchors --check false \
        --methods snce-fused-topk,snce-fused-topk-rowstep,snce-fused-topk-table --budget-s 100 --name loss-$anchors --out "$OUT" > "$OUT/loss-$anchors.log" 2>&1
      echo "anchors $anchors: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/loss-$anchors.log"
    done
  fi
  if [ "${PYTORCH:-1}" != 0 ]; then
    PY_BUDGET_S=${PY_BUDGET_S:-100}
    timeout $((PY_BUDGET_S + 40)) python3 tools/bench_loss.py --ks "${KS:-65536,262144}" --dtypes bf16 --budget-s "$PY_BUDGET_S" --out "$OUT/loss_pytorch.json" > /dev/null 2> "$OUT/loss_pytorch.log"
    echo "bench_loss.py: exit $? after $(( $(date +%s) - start )) s" >> "$OUT/loss_pytorch.log"
  fi
  # What the reply's output tail shows: the checks' verdict, the C# tables and the PyTorch rows.
  grep -E "^(Check|CHECK|The CUDA|The kernel)|FAILED" "$OUT/loss_cs.log" | head -20
  for f in loss loss-code loss-near; do [ -f "$OUT/$f.md" ] && { echo "== $f"; grep '^|' "$OUT/$f.md" | cut -d'|' -f2-8,11-15,17; }; done
  [ -f "$OUT/loss_pytorch.log" ] && tail -n 12 "$OUT/loss_pytorch.log"
  exit 0
fi

if [ "$PART" = profile ]; then
  # Unpack once and run the bench in-process under ncu; SNCE_PROFILE_STEPS=1 brackets the timed step with
  # cuProfilerStart/Stop, so only that step's kernels are recorded (not inputs, quantization, warm-up or check).
  device_unpack || exit 1
  device_dotnet_env
  export SNCE_PROFILE_STEPS=1
  device_libtorch_path                # LD_LIBRARY_PATH only: this part never set SNCE_LIBTORCH
  metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread
  for m in ${METHODS//,/ }; do
    timeout 150 ncu --csv --clock-control none --profile-from-start off --metrics $metrics --log-file "$OUT/ncu-$m.csv" \
      /tmp/dn/dotnet /tmp/dn/app/snce-bench.dll loss --device cuda --in-process --check false --dtypes bf16 --ks "${K_PROFILE:-262144}" \
      --methods $m --warmup 1 --repeats 1 --name prof-$m --out /tmp/prof > "$OUT/ncu-$m.log" 2>&1
    echo "ncu $m: exit $? after $(( $(date +%s) - start )) s"
  done
  python3 - "$OUT" ${METHODS//,/ } > "$OUT/profile.md" <<'PY'
import csv, sys, collections
out, methods = sys.argv[1], sys.argv[2:]
for m in methods:
    try:
        rows = [r for r in csv.DictReader(l for l in open(f"{out}/ncu-{m}.csv") if l.startswith('"'))]
    except FileNotFoundError:
        print(f"\n{m}: no ncu output"); continue
    # ncu picks a unit per row (ns/us/ms, byte/Kbyte/...): to ms and GB row by row.
    scale = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "second": 1e3,
             "byte": 1e-9, "Kbyte": 1e-6, "Mbyte": 1e-3, "Gbyte": 1.0, "Tbyte": 1e3}
    by = collections.defaultdict(dict)
    for r in rows:
        by[(r["ID"], r["Kernel Name"])][r["Metric Name"]] = float(r["Metric Value"].replace(",", "") or 0) * scale.get(r["Metric Unit"], 1.0)
    agg = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
    for (_, name), v in by.items():
        short = name.split("(")[0][:60]
        a = agg[short]
        a[0] += 1; a[1] += v.get("gpu__time_duration.sum", 0)
        a[2] += v.get("dram__bytes_read.sum", 0); a[3] += v.get("dram__bytes_write.sum", 0)
        a[4] += v.get("sm__warps_active.avg.pct_of_peak_sustained_active", 0)
    total = sum(a[1] for a in agg.values())
    print(f"\n### {m}: {total:.2f} ms of kernel time in the profiled step\n")
    print("| kernel | launches | ms | GB read | GB written | GB/s | occupancy % |\n|---|---|---|---|---|---|---|")
    for name, a in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        gbs = (a[2] + a[3]) / (a[1] / 1e3) if a[1] > 0 else 0
        print(f"| {name} | {a[0]} | {a[1]:.3f} | {a[2]:.2f} | {a[3]:.2f} | {gbs:.0f} | {a[4] / a[0]:.0f} |")
PY
  cat "$OUT/profile.md" | cut -c1-200 | head -120
  exit 0
fi
echo "unknown PART=$PART: use bench or profile"; exit 2
