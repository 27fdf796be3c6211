#!/bin/bash
# Data-parallel training through NCCL (issue #15, docs/distributed.md) on the GPU machine. Trains on synthetic token shards
# that tools/distributed_check.py writes there (learnable class patterns in Snce's shard format: no tokenizer, no data to carry).
#
# Prepare here (repository root):
#   ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj         # -> .device/ (git-ignored: carry it)
#   bash tools/slim_device_bundle.sh                                 # drop ResNet-18, ONNX Runtime, MiniLM: training needs none
# Device calls (carry [".device"]; a later call on the still-warm machine may carry nothing):
#   bash tools/device_distributed.sh ws1                    # any kind (nvidia-h200): world size 1 through NCCL == plain, bit for bit
#   GPUS=2 bash tools/device_distributed.sh scale           # nvidia-h200-x2 (GPUS=4 on nvidia-h200-x4): throughput, curves, failures
#
# ws1 (~3 min): for each loss implementation in IMPLS (default "auto reference"), trains the tiny AR generator STEPS=100 steps
#   on the same seed four times: plain twice (plain-a, plain-b: the control, is the plain trainer itself deterministic here?),
#   through the launcher at --gpus 1 (gpus1) and started by hand with WORLD_SIZE=1 (torchrun1), and compares every checkpoint
#   tensor byte for byte with plain-a. Writes $OUT/ws1.json (the verdicts), ws1-IMPL-VARIANT.log, ws1-IMPL-VARIANT.json.
# scale (~5 min at GPUS=2): for each model in MODELS (default "B S": preset B at 16x16, K 16,384, 1,000 classes; the study's
#   S at 8x8, K 1,024, 10 classes), trains STEPS=200 steps at the global BATCH=256 on 1 GPU and on GPUS GPUs (same seed) and
#   writes steps/s, images/s, scaling efficiency and both loss curves ($OUT/scale.json, scale-MODEL-gN.log, rank logs). Then two
#   failure tests on MODEL B: (a) under the launcher, kill -9 rank 1 once a checkpoint exists: seconds until the launcher exited,
#   its exit code and error, processes left, the checkpoint's integrity; (b) the same with the ranks started by hand (no
#   launcher: the ranks' own liveness channel and NCCL watchdog must end them). $OUT/failure.json, failure-*.log.
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
phase=${1:?usage: device_distributed.sh ws1|scale}
D=/tmp/snce-dist
mkdir -p $D
device_dotnet_env
device_libtorch
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}            # NVLink multicast stays off (KINDS.md)
export PYTHONUNBUFFERED=1
if [ -f .device/app.tar.xz ]; then device_unpack || exit 1
elif [ ! -x /tmp/dn/dotnet ]; then echo "no .device/ bundle and nothing unpacked in /tmp/dn: carry .device" >&2; exit 1
fi
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
nvidia-smi topo -m >> "$OUT/gpu.txt" 2>&1
ls -la /usr/lib/x86_64-linux-gnu/libnccl.so* >> "$OUT/gpu.txt" 2>&1
start=$(date +%s)
check() { python3 tools/distributed_check.py "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
elapsed() { echo "$(( $(date +%s) - start )) s"; }

# pid of the process started for run folder $1 whose environment has RANK=$2 (a rank the launcher or this script started)
rank_pid() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(tr '\0' '\n' < $p/cmdline 2>/dev/null | head -n 1 | xargs -r basename)" = dotnet ] || continue     # snce itself, not its timeout(1)
    tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- "--out $1\( \|$\)" || continue
    tr '\0' '\n' < $p/environ 2>/dev/null | grep -qx "RANK=$2" && { basename $p; return 0; }
  done
  return 1
}
# processes still running for run folder $1
left_for() { local n=0 p; for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- "--out $1\( \|$\)" && n=$((n + 1)); done; echo $n; }
wait_checkpoint() { local i; for i in $(seq 1 $2); do [ -f "$1/checkpoint/checkpoint.json" ] && return 0; sleep 1; done; return 1; }

case $phase in
  ws1)
    STEPS=${STEPS:-100}
    rm -rf $D/ws1 && mkdir -p $D/ws1
    check shards $D/tokens-ws1 --count 8192 --k 1024 --grid 8 --classes 10 > "$OUT/ws1-shards.json" || exit 1
    args="ar --tokens $D/tokens-ws1 --preset tiny --steps $STEPS --batch 64 --lr 1e-3 --warmup 10 --log-every 10 --validate-every 50 --val-batches 2 --checkpoint-every 50 --seed 7"
    for impl in ${IMPLS:-auto reference}; do
      for v in plain-a plain-b gpus1 torchrun1; do
        run=$D/ws1/$impl-$v
        case $v in
          plain-*) timeout 180 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $args --loss-implementation $impl --device cuda --out $run ;;
          gpus1) timeout 180 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $args --loss-implementation $impl --gpus 1 --out $run ;;
          torchrun1) WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$(free_port) \
                       timeout 180 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $args --loss-implementation $impl --device cuda --out $run ;;
        esac > "$OUT/ws1-$impl-$v.log" 2>&1
        echo "exit $? after $(elapsed)" >> "$OUT/ws1-$impl-$v.log"
        tail -n 2 "$OUT/ws1-$impl-$v.log"
      done
      for v in plain-b gpus1 torchrun1; do check compare $D/ws1/$impl-plain-a $D/ws1/$impl-$v > "$OUT/ws1-$impl-$v.json"; done
      [ -f $D/ws1/$impl-gpus1/logs/rank-0.log ] && cp $D/ws1/$impl-gpus1/logs/rank-0.log "$OUT/ws1-$impl-gpus1-rank-0.log"
    done
    python3 - "$OUT" ${IMPLS:-auto reference} > "$OUT/ws1.json" <<'PY'
import json, os, sys
out, impls = sys.argv[1], sys.argv[2:]
res = {}
for impl in impls:
    r = {}
    for v in ["plain-b", "gpus1", "torchrun1"]:
        p = os.path.join(out, f"ws1-{impl}-{v}.json")
        try:
            j = json.load(open(p))
            r[v] = {"bitwise_equal_to_plain_a": j["bitwise_equal"], "train_losses_equal": j["train_losses_equal"],
                    "loss_max_abs_diff": j["loss_max_abs_diff"],
                    "max_abs_diff": max((f.get("max_abs_diff") or 0.0) for f in j["files"].values())}
        except Exception as e:  # a run that failed leaves no checkpoint
            r[v] = {"error": str(e)}
    r["plain_is_deterministic"] = r["plain-b"].get("bitwise_equal_to_plain_a")
    res[impl] = r
print(json.dumps(res, indent=2))
PY
    cat "$OUT/ws1.json"
    echo "ws1 done after $(elapsed)" ;;

  scale)
    N=${GPUS:?set GPUS=2 or GPUS=4 (the GPUs of the kind)}
    STEPS=${STEPS:-200}; BATCH=${BATCH:-256}
    rm -rf $D/scale && mkdir -p $D/scale
    for model in ${MODELS:-B S}; do
      case $model in
        B) check shards $D/tokens-B --count 32768 --k 16384 --grid 16 --classes 1000 > /dev/null || exit 1; preset=B; tokens=$D/tokens-B ;;
        S) check shards $D/tokens-S --count 32768 --k 1024 --grid 8 --classes 10 > /dev/null || exit 1; preset=S; tokens=$D/tokens-S ;;
        *) echo "unknown model '$model' in MODELS (B, S)" >&2; exit 2 ;;
      esac
      args="ar --tokens $tokens --preset $preset --steps $STEPS --batch $BATCH --lr 3e-4 --warmup 20 --log-every 10 --validate-every 0 --val-batches 1 --checkpoint-every 100000 --seed 7"
      timeout 300 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $args --device cuda --out $D/scale/$model-g1 > "$OUT/scale-$model-g1.log" 2>&1
      echo "exit $? after $(elapsed)" >> "$OUT/scale-$model-g1.log"
      timeout 300 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $args --gpus $N --out $D/scale/$model-g$N > "$OUT/scale-$model-g$N.log" 2>&1
      echo "exit $? after $(elapsed)" >> "$OUT/scale-$model-g$N.log"
      for f in $D/scale/$model-g$N/logs/rank-*.log; do [ -f "$f" ] && cp "$f" "$OUT/scale-$model-g$N-$(basename $f)"; done
      tail -n 2 "$OUT/scale-$model-g1.log" "$OUT/scale-$model-g$N.log"
    done
    python3 - $N $BATCH $D/scale ${MODELS:-B S} > "$OUT/scale.json" <<'PY'
import json, os, subprocess, sys
n, batch, root, models = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
res = {"gpus": n, "global_batch": batch, "models": {}}
for m in models:
    runs = [os.path.join(root, f"{m}-g1"), os.path.join(root, f"{m}-g{n}")]
    c = json.loads(subprocess.run([sys.executable, "tools/distributed_check.py", "curves", *runs], capture_output=True, text=True).stdout)
    one, many = c[runs[0]], c[runs[1]]
    s1, sn = one["steps_per_s_median"], many["steps_per_s_median"]
    pairs = [(a, b) for (sa, a), (sb, b) in zip(zip(one["steps"], one["loss"]), zip(many["steps"], many["loss"])) if sa == sb]
    res["models"][m] = {
        "steps_per_s": {"1": s1, str(n): sn},
        "images_per_s": {"1": s1 * batch if s1 else None, str(n): sn * batch if sn else None},
        "step_ms": {"1": 1000 / s1 if s1 else None, str(n): 1000 / sn if sn else None},
        "scaling_efficiency": sn / (n * s1) if s1 and sn else None,
        "loss_curve": {"steps": one["steps"], "1": one["loss"], str(n): many["loss"]},
        "loss_max_abs_diff": max((abs(a - b) for a, b in pairs), default=None),
        "loss_max_rel_diff": max((abs(a - b) / abs(a) for a, b in pairs if a), default=None),
    }
print(json.dumps(res, indent=2))
PY
    grep -E '"(scaling_efficiency|loss_max_rel_diff)"' "$OUT/scale.json"
    echo "scale runs done after $(elapsed)"

    # Failure tests on preset B, a long run killed once its first checkpoint exists.
    [ -f $D/tokens-B/shards.json ] || check shards $D/tokens-B --count 32768 --k 16384 --grid 16 --classes 1000 > /dev/null || exit 1
    fargs="ar --tokens $D/tokens-B --preset B --steps 100000 --batch $BATCH --lr 3e-4 --warmup 20 --log-every 10 --validate-every 0 --val-batches 1 --checkpoint-every 30 --seed 7"
    # (a) under the launcher
    run=$D/scale/fail-launcher
    timeout 240 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $fargs --gpus $N --out $run > "$OUT/failure-launcher.log" 2>&1 &
    launcher=$!
    a_note="ok"
    if wait_checkpoint $run 150 && sleep 5 && victim=$(rank_pid $run 1); then
      t0=$(date +%s.%N); kill -9 $victim; wait $launcher; a_rc=$?; t1=$(date +%s.%N)
      sleep 1; a_left=$(left_for $run)
    else a_note="no checkpoint within 150 s or no rank 1 found"; a_rc=-1; t0=0; t1=0; a_left=$(left_for $run); kill $launcher 2>/dev/null; wait $launcher
    fi
    check intact $run > "$OUT/failure-launcher-intact.json"
    for f in $run/logs/rank-*.log; do [ -f "$f" ] && cp "$f" "$OUT/failure-launcher-$(basename $f)"; done
    # (b) ranks started by hand (torchrun's variables, every GPU visible, the GPU picked by LOCAL_RANK): no launcher to kill them
    run=$D/scale/fail-byhand
    port=$(free_port); pids=()
    for r in $(seq 0 $((N - 1))); do
      RANK=$r WORLD_SIZE=$N LOCAL_RANK=$r LOCAL_WORLD_SIZE=$N MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        timeout 200 /tmp/dn/dotnet /tmp/dn/app/snce.dll train $fargs --device cuda --out $run > "$OUT/failure-byhand-rank-$r.log" 2>&1 &
      pids+=($!)
    done
    b_note="ok"; b_exits=()
    if wait_checkpoint $run 150 && sleep 5 && victim=$(rank_pid $run 1); then
      u0=$(date +%s.%N); kill -9 $victim
      b_last=0; deadline=$(( $(date +%s) + 90 ))                                           # 90 s in all for the others
      for r in $(seq 0 $((N - 1))); do
        [ $r = 1 ] && continue
        while kill -0 ${pids[$r]} 2>/dev/null && [ $(date +%s) -lt $deadline ]; do sleep 0.1; done
        if kill -0 ${pids[$r]} 2>/dev/null; then b_note="rank $r still running 90 s after rank 1 was killed (hung): killed"; kill -9 ${pids[$r]}; fi
        wait ${pids[$r]}; b_exits+=("$r:$?"); b_last=$(date +%s.%N)
      done
      wait ${pids[1]} 2>/dev/null
    else b_note="no checkpoint within 150 s or no rank 1 found"; u0=0; b_last=0; for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait
    fi
    b_left=$(left_for $run)
    check intact $run > "$OUT/failure-byhand-intact.json"
    python3 - > "$OUT/failure.json" <<PY
import json
print(json.dumps({
  "launcher": {"note": "$a_note", "launcher_exit": $a_rc, "seconds_to_exit_after_kill": round($t1 - $t0, 2), "processes_left": $a_left,
               "checkpoint": json.load(open("$OUT/failure-launcher-intact.json"))},
  "by_hand": {"note": "$b_note", "exits": "${b_exits[*]}", "seconds_until_last_rank_exited": round($b_last - $u0, 2), "processes_left": $b_left,
              "checkpoint": json.load(open("$OUT/failure-byhand-intact.json"))},
}, indent=2))
PY
    cat "$OUT/failure.json"
    tail -n 4 "$OUT/failure-launcher.log"
    echo "scale done after $(elapsed)" ;;
  *) echo "unknown phase '$phase'; use ws1 or scale" >&2; exit 2 ;;
esac
exit 0
