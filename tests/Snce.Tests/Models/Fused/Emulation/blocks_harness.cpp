// Runs BlockKernels.cu on the CPU for tests (the model: Support/Emulation/host_prelude.h).
// Builds with: g++ -std=c++20 -O1 -fno-strict-aliasing -shared -fPIC -pthread blocks_harness.cpp -o libsnce_blocks_emu.so
// next to host_prelude.h, emu_runtime.h and the kernel source (as kernel.cu).
#include "host_prelude.h"
#include "kernel.cu"
#include "emu_runtime.h"

// Returns 0, or -1 for an unknown kernel or a bad block size.
extern "C" int emu_blocks_launch(const char* name, int grid, int block, const BlockArgs* args) {
    void (*fn)(BlockArgs) = nullptr;
    EMU_CASE(rmsnorm_fwd_f32) EMU_CASE(rmsnorm_fwd_bf16) EMU_CASE(rmsnorm_bwd_f32) EMU_CASE(rmsnorm_bwd_bf16)
    EMU_CASE(rope_fwd_f32) EMU_CASE(rope_fwd_bf16) EMU_CASE(rope_bwd_f32) EMU_CASE(rope_bwd_bf16)
    EMU_CASE(swiglu_fwd_f32) EMU_CASE(swiglu_fwd_bf16) EMU_CASE(swiglu_bwd_f32) EMU_CASE(swiglu_bwd_bf16)
    return emu_run(fn, grid, block, args) ? 0 : -1;
}
