// Builds with: g++ -std=c++20 -O1 -fno-strict-aliasing -shared -fPIC -pthread harness.cpp -o libsnce_emu.so
// after host_prelude.h and the kernel source (included as kernel.cu next to this file).
#include "host_prelude.h"
#include "kernel.cu"
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

thread_local EmuDim3 threadIdx;
thread_local EmuDim3 blockIdx;
EmuDim3 blockDim;
EmuDim3 gridDim;
float emu_exchange[1024];
int emu_misaligned;
static std::barrier<>* blockBarrier;
static std::barrier<>* warpBarriers[32];

void emu_block_barrier() { blockBarrier->arrive_and_wait(); }
void emu_warp_barrier(int warp) { warpBarriers[warp]->arrive_and_wait(); }

// Returns the number of misaligned vector accesses (0 when fine), or -1 for an unknown kernel or bad block size.
extern "C" int emu_launch(const char* name, int grid, int block, const RowArgs* args) {
    void (*fn)(RowArgs) = nullptr;
    if (!std::strcmp(name, "snce_rows_bf16_bf16")) fn = snce_rows_bf16_bf16;
    else if (!std::strcmp(name, "snce_rows_bf16_f32")) fn = snce_rows_bf16_f32;
    else if (!std::strcmp(name, "snce_rows_f32_bf16")) fn = snce_rows_f32_bf16;
    else if (!std::strcmp(name, "snce_rows_f32_f32")) fn = snce_rows_f32_f32;
    else if (!std::strcmp(name, "snce_rows_topk_bf16_bf16")) fn = snce_rows_topk_bf16_bf16;
    else if (!std::strcmp(name, "snce_rows_topk_bf16_f32")) fn = snce_rows_topk_bf16_f32;
    else if (!std::strcmp(name, "snce_rows_topk_f32_bf16")) fn = snce_rows_topk_f32_bf16;
    else if (!std::strcmp(name, "snce_rows_topk_f32_f32")) fn = snce_rows_topk_f32_f32;
    if (!fn || block <= 0 || block > 1024 || block % 32 != 0) return -1;
    blockDim = {(unsigned)block, 1, 1};
    gridDim = {(unsigned)grid, 1, 1};
    emu_misaligned = 0;
    std::barrier<> bb(block);
    blockBarrier = &bb;
    std::vector<std::unique_ptr<std::barrier<>>> wb;
    for (int w = 0; w < block / 32; w++) { wb.emplace_back(new std::barrier<>(32)); warpBarriers[w] = wb.back().get(); }
    const RowArgs a = *args;
    std::vector<std::thread> threads;
    for (int t = 0; t < block; t++)
        threads.emplace_back([fn, a, grid, t] {
            threadIdx = {(unsigned)t, 0, 0};
            for (int b = 0; b < grid; b++) {
                blockIdx = {(unsigned)b, 0, 0};
                fn(a);
                blockBarrier->arrive_and_wait();   // the block is done before the next reuses the statics
            }
        });
    for (auto& th : threads) th.join();
    return emu_misaligned;
}
