#!/bin/bash
# The tokenizer figures of docs/tokenizers.md on one GPU: for each data set and codebook size K, train a tokenizer
# (`snce tokenizer train`), evaluate it on the validation split (`snce tokenizer eval`: PSNR, SSIM, utilization,
# perplexity, encode tokens/s) and keep its reconstruction grid. Then one short IBQ run at K = 16,384 as a
# check that index backpropagation (a C# autograd function) runs on CUDA, and a comparison point.
#
# Prepare here (repository root of a normal checkout; bundle.sh needs .git to be a folder):
#   ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj      # → .device/ (the app + .NET runtime)
#   bash tools/slim_device_bundle.sh                              # drop the ResNet-18 ONNX models: app 73 → 6 MB
#   bash tools/pack_device_data.sh fashion-mnist emoji-twitter    # → .devdata/*.tar.xz (26 MB and 8 MB)
# Run there (one call per data set: keeps each call under 10 min and the carried tree under 64 MiB):
#   run  command: bash tools/device_tokenizers.sh fashion-mnist   carry: [".device", ".devdata/fashion-mnist.tar.xz"]
#   run  command: bash tools/device_tokenizers.sh emoji-twitter   carry: [".device", ".devdata/emoji-twitter.tar.xz"]
# Output under $OUT (6 files per data set): tokenizers-DATA.jsonl (one JSON object per run: the train summary
# and the eval fields), tokenizers-DATA.log (all progress and errors), recon-DATA-K.png (originals above
# reconstructions, K = 1024 and 262144), and a markdown table printed at the end.
#
# Knobs (environment): KS="1024 16384 65536 262144", QUANTIZER=ema, METRIC=l2, PRESET=small, STEPS, BATCH,
# MAX_SECONDS (per training run; default 75, so one data set fits in ~6 min), IBQ_CHECK=1; for a dry run elsewhere:
# SNCE_CMD="dotnet path/to/snce.dll" DEVICE=cpu (skips the bundle).
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
[ $# -ge 1 ] || { echo "usage: device_tokenizers.sh DATA... (fashion-mnist, emoji-twitter)" >&2; exit 2; }
out=${OUT:-$PWD/out}; mkdir -p "$out"
ks=(${KS:-1024 16384 65536 262144})
quantizer=${QUANTIZER:-ema}; metric=${METRIC:-l2}; preset=${PRESET:-small}; max_seconds=${MAX_SECONDS:-75}
data_dir=/tmp/snce-data; mkdir -p "$data_dir"

device=${DEVICE:-cuda}
if [ -n "${SNCE_CMD:-}" ]; then
  snce() { $SNCE_CMD "$@"; }
else
  # Unpack the bundle once and run snce.dll directly (not .device/run.sh: a bundle of bench/Snce.Bench, as
  # tools/device_study.sh uses, holds snce.dll too but its run.sh starts snce-bench).
  device_unpack || { echo "no usable .device/ bundle" >&2; exit 1; }
  device_dotnet_env
  device_libtorch
  snce info --device "$device" --check || { echo "the app does not run on $device here; see the lines above" >&2; exit 1; }
fi

run_one() { # data k quantizer steps batch max_seconds [grid]
  local data=$1 k=$2 q=$3 steps=$4 batch=$5 secs=$6 grid=${7:-}
  local dir=/tmp/tok-$data-$q-$k log="$out/tokenizers-$data.log" samples=0
  [ -n "$grid" ] && samples=32
  rm -rf "$dir"
  echo "== $data K=$k $q $metric: train $(date +%T)" | tee -a "$log"
  snce tokenizer train --data "$data" --data-dir "$data_dir" --preset "$preset" --codebook "$k" --quantizer "$q" --metric "$metric" \
    --steps "$steps" --batch "$batch" --max-seconds "$secs" --log-every 100 --checkpoint-every 0 --device "$device" --out "$dir" --json \
    > /tmp/train.json 2>> "$log" || { echo "   training failed (exit $?), see $log" | tee -a "$log"; return; }
  echo "== $data K=$k $q: eval $(date +%T)" | tee -a "$log"
  snce tokenizer eval --tokenizer "$dir" --data-dir "$data_dir" --device "$device" --json --samples "$samples" ${grid:+--grid "$grid"} \
    > /tmp/eval.json 2>> "$log" || { echo "   eval failed (exit $?), see $log" | tee -a "$log"; return; }
  python3 - "$data" "$steps" "$batch" >> "$out/tokenizers-$data.jsonl" <<'PY'
import json, sys
t, e = json.load(open("/tmp/train.json")), json.load(open("/tmp/eval.json"))
print(json.dumps({"data": sys.argv[1], "steps_asked": int(sys.argv[2]), "batch": int(sys.argv[3]),
                  "train": t, "eval": e}))
PY
}

for data in "$@"; do
  [ "$data" = emoji ] && data=emoji-twitter
  tar -C "$data_dir" -xJf ".devdata/$data.tar.xz" || { echo "no .devdata/$data.tar.xz (tools/pack_device_data.sh)" >&2; continue; }
  case $data in
    emoji*) steps=${STEPS:-1000}; batch=${BATCH:-64};;
    *)      steps=${STEPS:-1500}; batch=${BATCH:-128};;
  esac
  rm -f "$out/tokenizers-$data.jsonl"
  for k in "${ks[@]}"; do
    grid=""; [ "$k" = "${ks[0]}" ] || [ "$k" = "${ks[-1]}" ] && grid="$out/recon-$data-$k.png"
    run_one "$data" "$k" "$quantizer" "$steps" "$batch" "$max_seconds" "$grid"
  done
  [ "${IBQ_CHECK:-1}" = 1 ] && run_one "$data" 16384 ibq "$steps" "$batch" 30
  python3 - "$out/tokenizers-$data.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n| data | quantizer | metric | K | steps | PSNR (dB) | SSIM | utilization | perplexity | train images/s | encode tokens/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    t, e = r["train"], r["eval"]
    print(f"| {r['data']} | {e['quantizer']} | {e['metric']} | {e['codebook_size']:,} | {t['step']} ({t['stop']}) | {e['psnr']:.2f} | {e['ssim']:.4f} | "
          f"{100 * e['utilization']:.1f}% | {e['perplexity']:,.0f} | {t['images_per_second']:,.0f} | {e['encode_tokens_per_second']:,.0f} |")
PY
done
