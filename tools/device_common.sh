# The preamble the tools/device_*.sh scripts share, for the GPU machine (Ubuntu, Python with a CUDA PyTorch, no .NET):
# sourced, never run. Defines functions only; each script calls the ones it needs, from the repository root.
#   device_unpack                 the .device/ bundle (../shared/device/bundle.sh) → /tmp/dn: the .NET runtime and the app
#   device_dotnet_env             DOTNET_ROOT=/tmp/dn, .NET telemetry off
#   device_libtorch_path          PyTorch's torch/lib (in $tl) and the CUDA toolkit's libraries first on LD_LIBRARY_PATH
#   device_libtorch               the same, and SNCE_LIBTORCH=$tl (the libtorch Snce loads)
#   snce ARGS...                  the unpacked CLI (/tmp/dn/app/snce.dll)
#   device_require_bench_bundle LOG   fails, saying why on stdout and in LOG, without .device/run.sh (a bench bundle)
#   device_resnet_weights         ResNet-18's ONNX weights into the unpacked app: from .devonnx/ (whole), or from half A staged by
#                                 `device_study.sh onnx-a` plus .devonnx-b/ (halves: `device_study.sh split-onnx` here), or kept

device_unpack() {
  mkdir -p /tmp/dn && tar -C /tmp/dn -xJf .device/dotnet.tar.xz && tar -C /tmp/dn -xJf .device/app.tar.xz
}

device_dotnet_env() {
  export DOTNET_ROOT=/tmp/dn DOTNET_CLI_TELEMETRY_OPTOUT=1
}

device_libtorch_path() {
  tl=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
  export LD_LIBRARY_PATH=$tl:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
}

device_libtorch() {
  device_libtorch_path
  export SNCE_LIBTORCH=$tl
}

snce() { /tmp/dn/dotnet /tmp/dn/app/snce.dll "$@"; }

device_require_bench_bundle() {
  [ -f .device/run.sh ] && return 0
  echo "no .device/run.sh: run ../shared/device/bundle.sh bench/Snce.Bench/Snce.Bench.csproj first and carry .device" | tee "$1"
  return 1
}

device_resnet_weights() {
  local onnx=/tmp/dn/app/DnnImageModels/ResNet18Onnx/ResNet18.onnx
  mkdir -p "$(dirname $onnx)"
  if [ -f .devonnx/ResNet18.onnx.xz ]; then xz -dc .devonnx/ResNet18.onnx.xz > $onnx
  elif [ -f .devonnx-b/rn.01 ] && [ -f /tmp/onnx-parts/rn.00 ]; then cat /tmp/onnx-parts/rn.00 .devonnx-b/rn.01 | xz -dc > $onnx
  elif [ ! -s $onnx ]; then
    echo "no ResNet18 weights: carry .devonnx, or run 'bash tools/device_study.sh onnx-a' (carry .devonnx-a) and then this call carrying .devonnx-b" >&2; return 1
  fi
}
