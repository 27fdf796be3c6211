// Runs CUDA C kernels on the CPU for tests: one OS thread per CUDA thread, blocks one after another.
// __syncthreads is a barrier over the block's threads, __shfl_xor_sync exchanges through memory with a
// barrier over the warp's 32 threads, __shared__ variables are function statics (one block at a time).
// Enough for kernels that keep to CUDA's rules (uniform barriers, full-warp shuffles); not a simulator.
#pragma once
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <math.h>

#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)

struct EmuDim3 { unsigned int x, y, z; };
extern thread_local EmuDim3 threadIdx;
extern thread_local EmuDim3 blockIdx;
extern EmuDim3 blockDim;
extern EmuDim3 gridDim;

void emu_block_barrier();
void emu_warp_barrier(int warp);
extern float emu_exchange[1024];
extern int emu_misaligned;

inline void __syncthreads() { emu_block_barrier(); }

inline float __shfl_xor_sync(unsigned int, float v, int laneMask) {
    const int t = (int)threadIdx.x;
    emu_exchange[t] = v;
    emu_warp_barrier(t >> 5);
    const float r = emu_exchange[t ^ laneMask];
    emu_warp_barrier(t >> 5);
    return r;
}

inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

inline float __int_as_float(unsigned int i) { return std::bit_cast<float>(i); }
inline float __uint_as_float(unsigned int u) { return std::bit_cast<float>(u); }
inline unsigned int __float_as_uint(float f) { return std::bit_cast<unsigned int>(f); }

// A misaligned vector access would fault on the GPU; x86 tolerates it, so count it instead.
#define SNCE_ASSERT_ALIGNED(p, bytes) do { if (reinterpret_cast<std::uintptr_t>(p) % (bytes) != 0) emu_misaligned++; } while (0)
