#!/bin/bash
# The inpainting evidence (issue #14, docs/editing.md) on one H200, in three device calls that share the warm machine's /tmp:
# CE vs SNCE generators on emoji (64 px, 16×16 tokens with the small tokenizer) at K ∈ {1,024; 16,384; 65,536}, AR and
# masked, trained with `snce study`, then every run scored with `snce eval --inpaint` on the same held-out images and
# seed (center box, right half, bottom half) with a grid of the same inputs per run.
# NOT RUN YET: written in the CPU session that built editing; the next GPU session runs it and reports what comes back.
#
# Prepare here (repository root), as for tools/device_study.sh:
#   ../shared/device/bundle.sh src/Snce.Cli/Snce.Cli.csproj                 # the snce CLI + .NET runtime → .device/
#   bash tools/slim_device_bundle.sh                                         # drop ResNet18.onnx and ONNX Runtime from the bundle
#   snce data fetch emoji-twitter && bash tools/pack_device_data.sh emoji-twitter    # .devdata/emoji-twitter.tar.xz (~8 MB)
#   mkdir -p .devonnx && xz -T2 -6 -c ~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx > .devonnx/ResNet18.onnx.xz
# Call 1 (carry .device, .devdata):  bash tools/device_edit.sh prepare     tokenizers, shards, classifier
# Call 2a (carry .devonnx-a):        bash tools/device_study.sh onnx-a     half A of the ResNet-18 weights (bash tools/device_study.sh split-onnx here)
# Call 2b (carry .devonnx-b):        bash tools/device_edit.sh train       the generator runs (FD curves as in the study); again, carrying nothing, to resume
# Call 3 (no carry):                 bash tools/device_edit.sh edit        `snce eval --inpaint` per run and region, grids
# Each call must come within the 30 s the machine stays warm, or /tmp is gone (the script says so).
# Outputs under $OUT: prepare.tar.gz, study.tar.gz (as device_study.sh), edit.tar.gz (edit/RUN-REGION.json and .png, edit.log,
# edit.md: one table row per run and region).
# Knobs (environment): STUDY_ARGS, TIME_LIMIT_S (train, default 430), REGIONS ("center right bottom"), EDIT_N (1000 images
# per evaluation), EDIT_SEED (0), CFG (2).
set -uo pipefail
source "$(dirname "$0")/device_common.sh" || exit 1
: "${OUT:?OUT must name the output folder}"
cd "$(dirname "$0")/.."
phase=${1:?usage: device_edit.sh prepare|train|edit}
study=$DT/edit-study
data=$DT/snce-data
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
    snce study $STUDY_ARGS --data-dir $data --device $DEV --time-limit ${TIME_LIMIT_S:-430} --out $study > "$OUT/study.log" 2>&1
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
          --sample-batch ${EDIT_BATCH:-250} --data emoji-twitter --data-dir $data ${LIMIT:+--limit $LIMIT} --classifier $study/classifier --features torch --skip-memorization --device $DEV \
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
