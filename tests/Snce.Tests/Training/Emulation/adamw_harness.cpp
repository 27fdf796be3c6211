// Runs AdamWKernels.cu on the CPU for tests (the model: Support/Emulation/host_prelude.h).
// Builds with: g++ -std=c++20 -O1 -fno-strict-aliasing -shared -fPIC -pthread adamw_harness.cpp -o libsnce_adamw_emu.so
// next to host_prelude.h, emu_runtime.h and the kernel source (as kernel.cu).
#include "host_prelude.h"
#include "kernel.cu"
#include "emu_runtime.h"

// Returns 0, or -1 for an unknown kernel or a bad block size.
extern "C" int emu_adamw_launch(const char* name, int grid, int block, const AdamWArgs* args) {
    void (*fn)(AdamWArgs) = nullptr;
    EMU_CASE(adamw_sumsq_f32) EMU_CASE(adamw_sumsq_bf16) EMU_CASE(adamw_update_f32) EMU_CASE(adamw_update_bf16)
    return emu_run(fn, grid, block, args) ? 0 : -1;
}
