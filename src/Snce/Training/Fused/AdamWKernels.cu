// The optimizer step over the flat buffers in two kernels: the global gradient L2 norm (per-block partial sums of g²),
// then clip + AdamW (decoupled weight decay on the decay group) + the bf16 copy of the weights + the EMA, in one pass.
// Replaces FlatAdamW's ~10 libtorch passes, the clip's 4 and the EMA's 2 (src/Snce/Training/FlatAdamW.cs, Ema.cs),
// with no host synchronization: the second kernel reduces the first one's partials itself. Compiled at run time with
// NVRTC (no NVRTC headers: the shared bf16 helpers, Native/Cuda/Bf16.cuh, are inlined by CudaModule.EmbeddedSource),
// launched by AdamWKernels.cs on libtorch's stream 0; the same source compiles as C++ for the CPU emulator the tests use.
//
// Arithmetic is fp32, in the libtorch path's order (FlatAdamW.Step), so results match it to fp32 rounding:
//   norm = ‖g‖₂;  c = min(max_norm / (norm + 1e-6), 1) (NaN stays NaN, as clamp_max does);  g ← c·g
//   p ← p·(1 − lr·λ) on [0, decayElements);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//   p ← p − (lr/(1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε);  values ← T(p);  e ← d·e + (1−d)·p

#include "Bf16.cuh"

// Field order: pointers, then 8-byte integers, then 4-byte values, so that the C# mirror (AdamWKernels.Args,
// LayoutKind.Sequential) needs no padding rules: 8*8 + 2*8 + 12*4 = 128 bytes.
struct AdamWArgs {
    const void* grads;    // [n] gradient, model dtype (read only: the clip is applied on the fly)
    float* master;        // [n] fp32 master weights
    float* expAvg;        // [n] m
    float* expAvgSq;      // [n] v
    float* ema;           // [n] EMA of the master weights, or null (no EMA)
    void* values;         // [n] the model's weights in dtype T, or null (fp32 models: the master is the weights)
    float* partial;       // [partials] per-block sums of g² (written by adamw_sumsq, read by adamw_update)
    float* norm;          // [1] ‖g‖₂ before clipping (written by adamw_update's block 0)
    long long n;          // elements in each buffer
    long long decayElements;  // [0, decayElements) is the weight-decay group
    float beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps;
    float decayFactor;    // 1 − lr·λ (applied only when applyDecay)
    float stepSize;       // lr / (1 − β₁ᵗ)
    float sqrtBc2;        // √(1 − β₂ᵗ)
    float maxGradNorm;    // > 0: clip to it
    float emaDecay, oneMinusEmaDecay;
    int partials;         // blocks of adamw_sumsq (entries of partial)
};

#define ADAMW_MAX_WARPS 32

__device__ inline float warp_sum(float v) {
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

// The sum of v over the block, returned to every thread; the same order in every block (so every block of
// adamw_update computes the same norm). blockDim.x a multiple of 32, at most 1024.
__device__ inline float block_sum(float v) {
    __shared__ float warpSums[ADAMW_MAX_WARPS];
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) warpSums[threadIdx.x >> 5] = v;
    __syncthreads();
    float s = 0.f;
    for (unsigned int w = 0; w < blockDim.x / 32; w++) s += warpSums[w];
    __syncthreads();   // warpSums is free again
    return s;
}

// Pass 1: partial[block] = Σ g² over the block's grid-stride share.
template <typename T>
__device__ void adamw_sumsq(const AdamWArgs& a) {
    float s = 0.f;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n; i += (long long)gridDim.x * blockDim.x) {
        const float g = Elem<T>::load(a.grads, i);
        s += g * g;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) a.partial[blockIdx.x] = s;
}

// Pass 2: every block reduces the partials to the norm, then updates its grid-stride share of every buffer.
template <typename T>
__device__ void adamw_update(const AdamWArgs& a) {
    float s = 0.f;
    for (int i = threadIdx.x; i < a.partials; i += blockDim.x) s += a.partial[i];
    const float norm = sqrtf(block_sum(s));
    if (blockIdx.x == 0 && threadIdx.x == 0) a.norm[0] = norm;
    const bool clip = a.maxGradNorm > 0.f;
    float c = a.maxGradNorm / (norm + 1e-6f);
    if (c > 1.f) c = 1.f;
    const bool decay = a.decayFactor != 1.f;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n; i += (long long)gridDim.x * blockDim.x) {
        float g = Elem<T>::load(a.grads, i);
        if (clip) g *= c;
        float p = a.master[i];
        if (decay && i < a.decayElements) p *= a.decayFactor;
        const float m = a.expAvg[i] * a.beta1 + a.oneMinusBeta1 * g;
        const float v = a.expAvgSq[i] * a.beta2 + a.oneMinusBeta2 * g * g;
        const float denom = sqrtf(v) / a.sqrtBc2 + a.eps;
        p += -a.stepSize * (m / denom);
        a.expAvg[i] = m;
        a.expAvgSq[i] = v;
        a.master[i] = p;
        if (a.values) Elem<T>::store(a.values, i, p);
        if (a.ema) a.ema[i] = a.ema[i] * a.emaDecay + a.oneMinusEmaDecay * p;
    }
}

#define ADAMW_KERNEL(name, T, suffix) \
    extern "C" __global__ void name##_##suffix(AdamWArgs a) { name<T>(a); }
#define ADAMW_BOTH(name) ADAMW_KERNEL(name, float, f32) ADAMW_KERNEL(name, bf16_t, bf16)

ADAMW_BOTH(adamw_sumsq)
ADAMW_BOTH(adamw_update)
