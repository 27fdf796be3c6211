// The emulator's runtime, for the one translation unit of a harness (after host_prelude.h and kernel.cu): the thread
// and block indices and the barriers host_prelude.h declares, and emu_run, which runs a kernel's grid with one OS
// thread per CUDA thread, the blocks one after another. A harness maps kernel names to functions with EMU_CASE and
// exports a launch function over emu_run (see Losses/Fused/Emulation/harness.cpp, Models/Fused/Emulation/blocks_harness.cpp).
#pragma once
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

// In a launch function with `const char* name` and a null `fn`: picks the kernel named n.
#define EMU_CASE(n) if (!std::strcmp(name, #n)) fn = n;

// Runs fn on grid blocks of block threads; false (nothing run) when fn is null or block is not a multiple of 32 in 32..1024.
template <class Args>
bool emu_run(void (*fn)(Args), int grid, int block, const Args* args) {
    if (!fn || block <= 0 || block > 1024 || block % 32 != 0) return false;
    blockDim = {(unsigned)block, 1, 1};
    gridDim = {(unsigned)grid, 1, 1};
    std::barrier<> bb(block);
    blockBarrier = &bb;
    std::vector<std::unique_ptr<std::barrier<>>> wb;
    for (int w = 0; w < block / 32; w++) { wb.emplace_back(new std::barrier<>(32)); warpBarriers[w] = wb.back().get(); }
    const Args a = *args;
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
    return true;
}
