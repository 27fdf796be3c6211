#!/bin/bash
# Packs cached data sets for a GPU run of tools/device_tokenizers.sh: .devdata/NAME.tar.xz (git-ignored).
# The device machine has no network, so the data travels with the working tree (run's `carry`, 64 MiB in all
# together with .device/): fashion-mnist packs to ~26 MB, emoji-twitter to ~8 MB, the app bundle is ~30 MB.
#
# usage (from the repository root, after `snce data fetch NAME` here):
#   bash tools/pack_device_data.sh fashion-mnist [emoji-twitter ...] [--data-dir DIR]
set -euo pipefail
root=$(git rev-parse --show-toplevel)
data_dir=${SNCE_CACHE:+$SNCE_CACHE/data}
data_dir=${data_dir:-${XDG_CACHE_HOME:-$HOME/.cache}/snce/data}
names=()
while [ $# -gt 0 ]; do
  case $1 in
    --data-dir) data_dir=$2; shift 2;;
    *) names+=("$1"); shift;;
  esac
done
[ ${#names[@]} -gt 0 ] || { echo "usage: pack_device_data.sh NAME... [--data-dir DIR]" >&2; exit 2; }
ex="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.devdata/' "$ex" 2>/dev/null || echo '/.devdata/' >> "$ex"
mkdir -p "$root/.devdata"
for name in "${names[@]}"; do
  [ "$name" = emoji ] && name=emoji-twitter
  [ -f "$data_dir/$name/dataset.json" ] || { echo "$name is not cached in $data_dir; run: snce data fetch $name" >&2; exit 1; }
  tar -C "$data_dir" -cf - "$name" | xz -6 -T0 > "$root/.devdata/$name.tar.xz"
  echo "  $(du -h "$root/.devdata/$name.tar.xz" | cut -f1)  .devdata/$name.tar.xz"
done
