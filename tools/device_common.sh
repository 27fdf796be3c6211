# The preamble the tools/device_*.sh scripts share, for the GPU machine (Ubuntu, Python with a CUDA PyTorch, no .NET):
# sourced, never run. Defines functions only; each script calls the ones it needs, from the repository root.
#   device_unpack                 the .device/ bundle (../shared/device/bundle.sh) → $DN (/tmp/dn): the .NET runtime and the app
#   device_dotnet_env             DOTNET_ROOT=$DN, .NET telemetry off, SNCE_FONT (matplotlib's DejaVuSans) when unset
#   device_libtorch_path          PyTorch's torch/lib (in $tl) and the CUDA toolkit's libraries first on LD_LIBRARY_PATH
#   device_libtorch               the same, and SNCE_LIBTORCH=$tl (the libtorch Snce loads)
#   snce ARGS...                  the unpacked CLI ($DN/app/snce.dll)
#   device_require_bench_bundle LOG   fails, saying why on stdout and in LOG, without .device/run.sh (a bench bundle)
#   device_resnet_weights         ResNet-18's ONNX weights into the unpacked app: from .devonnx/ (whole), or from half A staged by
#                                 `device_study.sh onnx-a` plus .devonnx-b/ (halves: `device_study.sh split-onnx` here), or kept
#   device_gpu_info FILE          nvidia-smi's name, driver and memory as CSV into FILE
#   device_mps_start              CUDA MPS (processes share the GPU instead of time-slicing it): a user-space daemon with its pipe
#                                 and logs under $DT/mps-*, quit at exit; fails (status 1, nothing started) without the binary
#   device_mps_stop               quits the daemon device_mps_start started
#   $DT, $DN, $DEV                the device's scratch root (/tmp), the unpacked bundle ($DT/dn) and the --device of every verb (cuda)
#
# CPU rehearsal (here, not on the device): DEVICE_REHEARSAL=DIR, made by `bash tools/device_rehearse.sh setup DIR`, runs a
# script's phases on this machine as the device would: DT=DIR (so nothing lands in the device paths of /tmp), the slimmed
# app of the bundle from DIR/app (what bundle.sh + slim_device_bundle.sh leave: no ResNet-18, ONNX Runtime or MiniLM),
# libtorch-cpu from DIR/libtorch as the device's torch/lib, DEV=cpu, no nvidia-smi. Sizes are the caller's (tiny knobs).
# One difference: FD-ResNet18 runs through ONNX Runtime on the CPU ('auto' features), TorchSharp on CUDA, so in a rehearsal
# device_resnet_weights also puts DIR/onnxruntime's libraries into the app. `device_rehearse.sh call` runs one call.

if [ -n "${DEVICE_REHEARSAL:-}" ]; then
  [ -d "$DEVICE_REHEARSAL/app" ] && [ -d "$DEVICE_REHEARSAL/libtorch" ] || { echo "DEVICE_REHEARSAL=$DEVICE_REHEARSAL: run 'bash tools/device_rehearse.sh setup $DEVICE_REHEARSAL' first" >&2; return 1 2>/dev/null || exit 1; }
  DT=$(cd "$DEVICE_REHEARSAL" && pwd); DEV=cpu
else
  DT=/tmp; DEV=cuda
fi
DN=$DT/dn
export DT DN DEV   # exported: `bash -c "$(declare -f snce); ..."` (a timeout around a function) reads $DN in the child

device_unpack() {
  if [ -n "${DEVICE_REHEARSAL:-}" ]; then
    # The runtime of this machine stands in for dotnet.tar.xz; the app is a fresh copy of the slimmed one, as a tar would give.
    local host; host=$(dirname "$(readlink -f "$(command -v dotnet)")")
    rm -rf "$DN" && mkdir -p "$DN" && cp -a "$DT/app" "$DN/app" && ln -s "$host/dotnet" "$DN/dotnet" && ln -s "$host/host" "$DN/host" && ln -s "$host/shared" "$DN/shared"
    return
  fi
  mkdir -p $DN && tar -C $DN -xJf .device/dotnet.tar.xz && tar -C $DN -xJf .device/app.tar.xz
}

device_mps_start() {
  command -v nvidia-cuda-mps-control > /dev/null || return 1
  export CUDA_MPS_PIPE_DIRECTORY=$DT/mps-pipe CUDA_MPS_LOG_DIRECTORY=$DT/mps-log
  mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
  trap device_mps_stop EXIT
  nvidia-cuda-mps-control -d
}

device_mps_stop() { echo quit | nvidia-cuda-mps-control > /dev/null 2>&1; trap - EXIT; }

device_gpu_info() {
  if [ -n "${DEVICE_REHEARSAL:-}" ]; then echo "name,driver_version,memory.total"$'\n'"CPU rehearsal ($(nproc) cores),none,none" > "$1"
  else nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$1"; fi
}

device_dotnet_env() {
  export DOTNET_ROOT=$DN DOTNET_CLI_TELEMETRY_OPTOUT=1
  # The device has no system fonts (grid captions and plot labels came out blank, 2026-12-04): use matplotlib's DejaVuSans
  # when the machine's Python has it and SNCE_FONT is not set already.
  if [ -z "${SNCE_FONT:-}" ] && [ -z "${DEVICE_REHEARSAL:-}" ]; then
    f=$(python3 -c 'import matplotlib,os;print(os.path.join(os.path.dirname(matplotlib.__file__),"mpl-data/fonts/ttf/DejaVuSans.ttf"))' 2>/dev/null)
    [ -f "$f" ] && export SNCE_FONT=$f
  fi
  return 0
}

device_libtorch_path() {
  if [ -n "${DEVICE_REHEARSAL:-}" ]; then tl=$DT/libtorch
  else tl=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")'); fi
  export LD_LIBRARY_PATH=$tl:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
}

device_libtorch() {
  device_libtorch_path
  export SNCE_LIBTORCH=$tl
}

snce() { $DN/dotnet $DN/app/snce.dll "$@"; }

device_require_bench_bundle() {
  [ -f .device/run.sh ] && return 0
  echo "no .device/run.sh: run ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj first and carry .device" | tee "$1"
  return 1
}

device_resnet_weights() {
  local onnx=$DN/app/DnnImageModels/ResNet18Onnx/ResNet18.onnx
  mkdir -p "$(dirname $onnx)"
  if [ -f .devonnx/ResNet18.onnx.xz ]; then xz -dc .devonnx/ResNet18.onnx.xz > $onnx
  elif [ -f .devonnx-b/rn.01 ] && [ -f $DT/onnx-parts/rn.00 ]; then cat $DT/onnx-parts/rn.00 .devonnx-b/rn.01 | xz -dc > $onnx
  elif [ ! -s $onnx ]; then
    echo "no ResNet18 weights: carry .devonnx, or run 'bash tools/device_study.sh onnx-a' (carry .devonnx-a) and then this call carrying .devonnx-b" >&2; return 1
  fi
  # Rehearsal: FD-ResNet18 on the CPU ('auto' features) runs through ONNX Runtime, which the slimmed app lacks.
  [ -z "${DEVICE_REHEARSAL:-}" ] || cp -a "$DT"/onnxruntime/* $DN/app/
}
