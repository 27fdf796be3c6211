// Lets clang (NVPTX back end, no CUDA toolkit) compile the NVRTC kernel source to PTX: a syntax and type check.
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#include "__clang_cuda_builtin_vars.h"
extern "C" __device__ float __nv_exp2f(float);
extern "C" __device__ float __nv_log2f(float);
__device__ inline float exp2f(float x) { return __nv_exp2f(x); }
__device__ inline float log2f(float x) { return __nv_log2f(x); }
__device__ inline float fmaxf(float a, float b) { return __builtin_fmaxf(a, b); }
__device__ inline float __int_as_float(unsigned int i) { return __builtin_bit_cast(float, i); }
__device__ inline float __uint_as_float(unsigned int u) { return __builtin_bit_cast(float, u); }
__device__ inline unsigned int __float_as_uint(float f) { return __builtin_bit_cast(unsigned int, f); }
__device__ inline float __shfl_xor_sync(unsigned int mask, float v, int laneMask) { return __nvvm_shfl_sync_bfly_f32(mask, v, laneMask, 0x1f); }
__device__ inline int atomicAdd(int* p, int v) { return __nvvm_atom_add_gen_i(p, v); }
