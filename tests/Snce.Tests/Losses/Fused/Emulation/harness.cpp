// Runs the fused loss's row kernels on the CPU for tests (the model: Support/Emulation/host_prelude.h).
// Builds with: g++ -std=c++20 -O1 -fno-strict-aliasing -shared -fPIC -pthread harness.cpp -o libsnce_kernel_emu.so
// next to host_prelude.h, emu_runtime.h and the kernel source (as kernel.cu).
#include "host_prelude.h"
#include "kernel.cu"
#include "emu_runtime.h"

// Returns the number of misaligned vector accesses (0 when fine), or -1 for an unknown kernel or bad block size.
extern "C" int emu_launch(const char* name, int grid, int block, const RowArgs* args) {
    void (*fn)(RowArgs) = nullptr;
    EMU_CASE(snce_rows_bf16_bf16) EMU_CASE(snce_rows_bf16_f32) EMU_CASE(snce_rows_f32_bf16) EMU_CASE(snce_rows_f32_f32)
    EMU_CASE(snce_rows_topk_bf16_bf16) EMU_CASE(snce_rows_topk_bf16_f32) EMU_CASE(snce_rows_topk_f32_bf16) EMU_CASE(snce_rows_topk_f32_f32)
    emu_misaligned = 0;
    return emu_run(fn, grid, block, args) ? emu_misaligned : -1;
}
