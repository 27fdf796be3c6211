#!/bin/bash
# The inpainting evidence (issue #14, docs/editing.md) on one H200, as device calls that share the warm machine's /tmp:
# CE vs SNCE generators on emoji (64 px, 16×16 tokens with the small tokenizer) at K ∈ {1,024; 16,384; 65,536}, AR and
# masked, trained with `snce study`, then every run scored with `snce eval --inpaint` on the same held-out images and
# seed (center box, right half, bottom half) with a grid of the same inputs per run.
# The emoji prepare/train phases have not run on a GPU yet (rehearsed on the CPU with tiny settings, below). The edit phase
# has: 2026-12-04 on one H200, STUDY_DIR=/tmp/study DATA=fashion-mnist (the runs tools/device_study.sh had just trained in the
# lease, K = 16,384, seed 1) scored 12 evaluations (4 runs × center/right/bottom, n = 1,000, CFG 2) in 61 s; results in
# docs/results/h200-study-k16384-seeds-1-2-dropout-edit-2026-12-04/edit/ (their FD column predates the fix that spreads
# the evaluated rows over the validation split; see docs/editing.md). The machine stays warm 30 s after a call and is
# held 30 minutes at most: make the calls back to back; if it was given back, start again at `prepare`.
#
# Prepare here (repository root):
#   ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj && bash tools/slim_device_bundle.sh   # .device/ ≈ 31 MiB
#   snce data fetch emoji && bash tools/pack_device_data.sh emoji-twitter                        # .devdata/ 7.3 MiB
#   mkdir -p .devonnx && xz -T2 -6 -c ~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx > .devonnx/ResNet18.onnx.xz
#   bash tools/device_study.sh split-onnx                                                        # .devonnx-a/ 28.6 MiB, .devonnx-b/ 27.3 MiB
#   bash tools/device_rehearse.sh carry .device .devdata                                         # each call's size, tree included (≈ 50.6 MiB here)
# The calls (carry → command), in order, each ≤ 10 min:
#   1  carry [.device, .devdata]  bash tools/device_edit.sh prepare    tokenizers, shards, classifier (again, carrying nothing, if its budget ran out)
#   2  carry [.devonnx-a]         bash tools/device_study.sh onnx-a    half A of the ResNet-18 weights
#   3  carry [.devonnx-b]         bash tools/device_edit.sh train      the generator runs (FD curves as in the study)
#   4  carry []                   bash tools/device_edit.sh train      again until study.log says every run went through (the study resumes)
#   5  carry []                   bash tools/device_edit.sh edit       `snce eval --inpaint` per run and region within EDIT_BUDGET_S; again for the rest
# Outputs under $OUT: gpu.txt, prepare.log, prepare.tar.gz; study.log, study.tar.gz (as device_study.sh: STUDY.md, report/,
# runs/NAME/{metrics.jsonl, config.json, checkpoint/checkpoint.json}); edit.tar.gz (RUN-REGION.json and .png, edit.log,
# edit.md: one table row per run and region, every result so far). For docs/results/: unpack study.tar.gz and edit.tar.gz
# into one folder; `snce report FOLDER/runs/* --out FOLDER/report` redraws the curves, edit.md is the inpainting table.
# Knobs (environment): STUDY_DIR ($DT/edit-study), DATA (emoji-twitter; the edit phase), STUDY_ARGS (default below: 20 runs), PREP_TIMEOUT_S (540), TIME_LIMIT_S (train, 430), STUDY_CAP_S
# (545, a hard stop), REGIONS
# ("center right bottom"), EDIT_N (1000 images per evaluation), EDIT_SEED (0), CFG (2), EDIT_BATCH (250), EDIT_BUDGET_S (480),
# LIMIT (images per split of the edit evaluations, rehearsals only).
#
# Device seconds, estimated (not measured): prepare ~300-540 s for three tokenizers (the gpu preset caps each at 100 s) plus
# shards and the classifier (may need a second prepare call); train 430 s + ≤ 60 s per call, the default 20 runs × 1000
# steps at --parallel 10 likely 2-3 calls; edit ~10-20 s per (run, region) at n = 1000: 60 evaluations ≈ 2 calls.
#
# CPU rehearsal, 2026-12-03 (2 shared cores; CPU timings with tiny settings, not device timings), each phase through
# `bash tools/device_rehearse.sh call DIR "CARRY" "STUDY_ARGS='...' bash tools/device_edit.sh PHASE"` with STUDY_ARGS="--preset
# quick --data emoji-twitter --codebooks 64 --objectives ar,mask --losses ce,snce --focus-losses none --sweep-perplexities none
# --headline-seeds none --steps 20 --eval-every 10 --eval-images 20 --limit 200 --tokenizer-steps 20 --tokenizer-preset tiny
# --generator-preset tiny --classifier-steps 20 --batch 8 --parallel 1":
#   prepare [.devdata] 64 s (3 files back) · onnx-a [.devonnx-a] 0 s · train [.devonnx-b] 233 s (4 runs, 2 evaluations each;
#   2 files back) · edit (EDIT_N=20) 456 s: stopped by its budget with 5 of 12 evaluations done (the first featurized all
#   3,786 real images on the CPU, 337 s), packed them and said to call again · edit again (LIMIT=200) 142 s: the other 7;
#   tokens changed outside the region 0 in every row · `snce report` over the study's runs/ wrote its curves and table.
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
phase=${1:?usage: device_edit.sh prepare|train|edit}
study=${STUDY_DIR:-$DT/edit-study}   # STUDY_DIR=/tmp/study: score the runs tools/device_study.sh trained in this lease
data=$DT/snce-data
DATA=${DATA:-emoji-twitter}          # the data set the edit phase evaluates on (fashion-mnist for device_study.sh's runs)
STUDY_ARGS=${STUDY_ARGS:-"--preset gpu --data emoji-twitter --codebooks 1024,16384,65536 --objectives ar,mask --losses ce,snce --focus-losses none --sweep-perplexities none --headline-seeds 1,2 --steps 1000 --eval-every 250 --eval-images 1000 --parallel 10"}
device_dotnet_env
export PYTHONUNBUFFERED=1
device_libtorch
start=$(date +%s)
case $phase in
  prepare)
    mkdir -p $data
    device_unpack || exit 1
    if [ -f .devdata/emoji-twitter.tar.xz ]; then tar -C $data -xJf .devdata/emoji-twitter.tar.xz || exit 1
    elif [ ! -f $data/emoji-twitter/dataset.json ]; then echo "no data: carry .devdata (bash tools/pack_device_data.sh emoji-twitter)" >&2; exit 1; fi
    device_gpu_info "$OUT/gpu.txt"
    timeout ${PREP_TIMEOUT_S:-540} bash -c "$(declare -f snce); snce study $STUDY_ARGS --data-dir $data --device $DEV --prepare-only --out $study" > "$OUT/prepare.log" 2>&1
    rc=$?
    echo "prepare: exit $rc after $(( $(date +%s) - start )) s$([ $rc = 124 ] && echo ' (time budget: call prepare again, carrying nothing; the study resumes)')" | tee -a "$OUT/prepare.log"
    (cd $study && tar -czf "$OUT/prepare.tar.gz" --exclude='*.safetensors' --exclude='*.npy' tokenizers classifier.json logs study-config.json 2>/dev/null) ;;
  train)
    [ -x $DN/dotnet ] && [ -d $study/shards ] || { echo "the prepare call's files are gone (the machine was given back), or prepare did not finish: run 'prepare' again" >&2; exit 1; }
    device_resnet_weights || exit 1
    # --time-limit starts no job after 430 s and gives running ones 60 s more; the timeout (SIGTERM: the study stops its jobs,
    # which save) keeps the call and the archive inside the 10 minutes if that overshoots.
    timeout -k 20 ${STUDY_CAP_S:-545} $DN/dotnet $DN/app/snce.dll study $STUDY_ARGS --data-dir $data --device $DEV --time-limit ${TIME_LIMIT_S:-430} --out $study > "$OUT/study.log" 2>&1
    echo "study: exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/study.log"
    # Globs expand inside the study folder; what `snce report` reads per run (metrics.jsonl, checkpoint/checkpoint.json) keeps its layout.
    (cd $study && tar -czf "$OUT/study.tar.gz" STUDY.md study.json study-config.json report samples logs classifier.json tokenizers/*.png \
      tokenizers/*/eval.json tokenizers/*/train.json tokenizers/*.json runs/*/metrics.jsonl runs/*/config.json runs/*/checkpoint/checkpoint.json \
      runs/*/best/best.json runs/*/final-*.json 2>/dev/null) ;;
  edit)
    [ -f $DN/app/DnnImageModels/ResNet18Onnx/ResNet18.onnx ] && [ -d $study/runs ] || { echo "the train call's files are gone: run 'prepare' and 'train' again" >&2; exit 1; }
    # Resumable within a budget: a (run, region) whose JSON is already in $DT/edit-out is skipped, no evaluation starts after
    # EDIT_BUDGET_S, and every call packs all results so far (call again, carrying nothing, for the rest).
    eo=$DT/edit-out; mkdir -p $eo; budget=${EDIT_BUDGET_S:-480}; left=0
    for run in $study/runs/*/; do
      name=$(basename "$run")
      [ -f "$run/checkpoint/checkpoint.json" ] || { echo "$name: no checkpoint, skipped" >> $eo/edit.log; continue; }
      for region in ${REGIONS:-center right bottom}; do
        j=$eo/$name-$region.json
        [ -s "$j" ] && continue
        remaining=$(( budget - ($(date +%s) - start) ))
        [ $remaining -gt 30 ] || { left=$((left + 1)); continue; }
        timeout $remaining bash -c "$(declare -f snce); snce eval --checkpoint '$run' --inpaint $region --n ${EDIT_N:-1000} --seed ${EDIT_SEED:-0} --cfg ${CFG:-2} \
          --sample-batch ${EDIT_BATCH:-250} --data $DATA --data-dir $data ${LIMIT:+--limit $LIMIT} --classifier $study/classifier --features torch --skip-memorization --device $DEV \
          --grid $eo/$name-$region.png --json" > "$j.part" 2>> $eo/edit.log \
          && mv "$j.part" "$j" || { echo "$name $region: exit $? after $(( $(date +%s) - start )) s" >> $eo/edit.log; rm -f "$j.part"; left=$((left + 1)); }
      done
      echo "$name done after $(( $(date +%s) - start )) s" >> $eo/edit.log
    done
    python3 - $eo > $eo/edit.md <<'PY'
import glob, json, os, sys
print("| run | step | region | PSNR in region (dB) | reconstruction PSNR | L1 in region | tokens changed outside | FD-ResNet18 | class consistency |")
print("|---|---|---|---|---|---|---|---|---|")
for j in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    name, region = os.path.basename(j)[:-5].rsplit("-", 1)
    r = json.load(open(j)); i = r["inpainting"]; c = r.get("class_accuracy")
    print(f"| {name} | {r['step']} | {region} | {i['psnr_in_region']:.2f} | {i['reconstruction_psnr_in_region']:.2f} | {i['l1_in_region']:.4f} | "
          f"{i['tokens_changed_outside']} | {r['fd']:.2f} | {'–' if c is None else round(c, 4)} |")
PY
    [ $left = 0 ] && echo "all evaluations done" >> $eo/edit.log || echo "$left evaluations left: call 'edit' again (carrying nothing)" | tee -a $eo/edit.log
    tar -C $eo -czf "$OUT/edit.tar.gz" .
    cat $eo/edit.md ;;
  *) echo "unknown phase '$phase'; use prepare, train or edit" >&2; exit 2 ;;
esac
[ $phase = edit ] || tail -n 25 "$OUT/$([ $phase = prepare ] && echo prepare || echo study).log"
