// bf16 helpers shared by every NVRTC kernel source (Losses/Fused/SnceRows.cu, Models/Fused/BlockKernels.cu,
// Training/Fused/AdamWKernels.cu): the storage type, fp32 <-> bf16 as libtorch rounds, packed pairs for vector
// accesses, and Elem<T> (element i of a float or bf16 buffer as fp32, and back).
// A kernel source names it on a line of its own, #include "Bf16.cuh"; CudaModule.EmbeddedSource puts this text in
// place of that line, so NVRTC compiles one self-contained source (no NVRTC headers), the PTX cache key (a hash of
// the source) covers the header, and the CPU emulator and the clang checks compile the same text.
#ifndef SNCE_BF16_CUH
#define SNCE_BF16_CUH

typedef unsigned short bf16_t;

// bf16 bits -> fp32 (exact).
__device__ inline float bf2f(bf16_t v) { return __uint_as_float(((unsigned int)v) << 16); }
// fp32 -> bf16 bits in the low half of a 32-bit word, round to nearest even (as libtorch does); NaN stays a quiet NaN.
__device__ inline unsigned int f2bf_bits(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) | 0x40u) & 0xffffu;
    return ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) & 0xffffu;
}
// fp32 -> bf16 (f2bf_bits as the 16-bit type).
__device__ inline bf16_t f2bf(float f) { return (bf16_t)f2bf_bits(f); }

// Two bf16 in 32 bits, the lower address in the low half (vector loads/stores).
__device__ inline float bf16_lo(unsigned int u) { return __uint_as_float(u << 16); }
__device__ inline float bf16_hi(unsigned int u) { return __uint_as_float(u & 0xffff0000u); }
__device__ inline unsigned int bf16_pack(float lo, float hi) { return f2bf_bits(lo) | (f2bf_bits(hi) << 16); }

// Element i of a T buffer as fp32 and back (rounded to T); round(v) = v rounded to T, as fp32.
template <typename T> struct Elem;
template <> struct Elem<float> {
    __device__ static inline float load(const void* p, long long i) { return ((const float*)p)[i]; }
    __device__ static inline void store(void* p, long long i, float v) { ((float*)p)[i] = v; }
    __device__ static inline float round(float v) { return v; }
};
template <> struct Elem<bf16_t> {
    __device__ static inline float load(const void* p, long long i) { return bf2f(((const bf16_t*)p)[i]); }
    __device__ static inline void store(void* p, long long i, float v) { ((bf16_t*)p)[i] = f2bf(v); }
    __device__ static inline float round(float v) { return bf2f(f2bf(v)); }
};

#endif
