// Row-wise fused cross-entropy against a hard, dense or sparse target: statistics and gradient.
// One thread block per row of a [R, K] block of logits. Compiled at run time with NVRTC (no headers,
// no CUDA runtime); launched by FusedKernelRows.cs through the driver API on libtorch's stream 0.
// Design and measurements: docs/fused-snce.md.
//
// For row i with logits l (K values) and its target q:
//   mode 0 (hard):   q = one-hot at the token t_i (plain cross-entropy)
//   mode 1 (dense):  q = softmax(s), s = raw scores (K values) * scoreScale   (SNCE, full codebook)
//   mode 2 (sparse): q given as topK (index, probability) pairs per row      (SNCE, top-k)
// the kernel writes stats[i] = (lse(l) - sum_k q_k l_k, lse(l) - l_{t_i}, H(q), lse(l)) and, when grad is
// set, grad[i, k] = coef_i * (softmax(l)_k - q_k). grad may alias logits: every element is read by the
// thread that writes it, before it writes it, and the sparse targets' entries are replaced after a barrier.
// Masked rows (mask[i] == 0) get zero gradient and zero statistics.
// Both log-sum-exps are online and in fp32, in base 2: x = l * log2(e), so exp2f/log2f map to the
// special-function unit. Pass 1 reads the row once (twice the bytes in mode 1: logits and scores),
// pass 2 reads it again and writes the gradient.

typedef unsigned short bf16_t;

#define SNCE_MAX_TOPK 1024
#define SNCE_LOG2E 1.4426950408889634f
#define SNCE_LN2 0.6931471805599453f
#ifndef SNCE_ASSERT_ALIGNED
#define SNCE_ASSERT_ALIGNED(p, bytes)
#endif

// Field order: all 8-byte fields first, then 4-byte ones, so that the C# mirror (FusedKernelRows.RowArgs,
// LayoutKind.Sequential) has the same layout without padding rules to reason about: 120 bytes.
struct RowArgs {
    const void* logits;          // [R, ldLogits] TL
    void* grad;                  // [R, ldGrad] TL or null (statistics only)
    const void* scores;          // [R, ldScores] TS raw scores (mode 1) or null
    const long long* tokens;     // [R] nearest code per row (hard-CE term; the target in mode 0)
    const long long* topIdx;     // [R, topK] (mode 2) or null
    const float* topQ;           // [R, topK] (mode 2) or null
    const float* coef;           // [R] gradient weight m_i w_i / sum(m)
    const unsigned char* mask;   // [R] bool, or null: every row supervised
    float* stats;                // [R, 4]
    long long ldLogits;          // row strides, in elements
    long long ldGrad;
    long long ldScores;
    long long K;                 // codes per row
    float scoreScale;            // 1 / tau
    int mode;                    // 0 hard, 1 dense, 2 sparse
    int topK;                    // mode 2: pairs per row, <= SNCE_MAX_TOPK
    int reserved;
};

__device__ inline float snce_neg_inf() { return __int_as_float(0xff800000); }
__device__ inline float snce_nan() { return __int_as_float(0x7fc00000); }

__device__ inline float bf16_lo(unsigned int u) { return __uint_as_float(u << 16); }
__device__ inline float bf16_hi(unsigned int u) { return __uint_as_float(u & 0xffff0000u); }
// fp32 -> bf16 bits, round to nearest even (as libtorch does); NaN stays a quiet NaN.
__device__ inline unsigned int f2bf(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) | 0x40u) & 0xffffu;
    return ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) & 0xffffu;
}
__device__ inline unsigned int bf16_pack(float lo, float hi) { return f2bf(lo) | (f2bf(hi) << 16); }

struct alignas(16) Pack16 { unsigned int x, y, z, w; };
struct alignas(8) Pack8 { unsigned int x, y; };

// Loads/stores V consecutive elements as floats; for V > 1 the pointer is aligned to V * sizeof(T).
template <typename T, int V> struct Io;

template <> struct Io<float, 1> {
    __device__ static inline void load(const float* p, float* v) { v[0] = p[0]; }
    __device__ static inline void store(float* p, const float* v) { p[0] = v[0]; }
};
template <> struct Io<float, 4> {
    __device__ static inline void load(const float* p, float* v) {
        SNCE_ASSERT_ALIGNED(p, 16);
        const Pack16 t = *reinterpret_cast<const Pack16*>(p);
        v[0] = __uint_as_float(t.x); v[1] = __uint_as_float(t.y); v[2] = __uint_as_float(t.z); v[3] = __uint_as_float(t.w);
    }
    __device__ static inline void store(float* p, const float* v) {
        SNCE_ASSERT_ALIGNED(p, 16);
        Pack16 t;
        t.x = __float_as_uint(v[0]); t.y = __float_as_uint(v[1]); t.z = __float_as_uint(v[2]); t.w = __float_as_uint(v[3]);
        *reinterpret_cast<Pack16*>(p) = t;
    }
};
template <> struct Io<bf16_t, 1> {
    __device__ static inline void load(const bf16_t* p, float* v) { v[0] = bf16_lo((unsigned int)p[0]); }
    __device__ static inline void store(bf16_t* p, const float* v) { p[0] = (bf16_t)f2bf(v[0]); }
};
template <> struct Io<bf16_t, 4> {
    __device__ static inline void load(const bf16_t* p, float* v) {
        SNCE_ASSERT_ALIGNED(p, 8);
        const Pack8 t = *reinterpret_cast<const Pack8*>(p);
        v[0] = bf16_lo(t.x); v[1] = bf16_hi(t.x); v[2] = bf16_lo(t.y); v[3] = bf16_hi(t.y);
    }
    __device__ static inline void store(bf16_t* p, const float* v) {
        SNCE_ASSERT_ALIGNED(p, 8);
        Pack8 t;
        t.x = bf16_pack(v[0], v[1]); t.y = bf16_pack(v[2], v[3]);
        *reinterpret_cast<Pack8*>(p) = t;
    }
};
template <> struct Io<bf16_t, 8> {
    __device__ static inline void load(const bf16_t* p, float* v) {
        SNCE_ASSERT_ALIGNED(p, 16);
        const Pack16 t = *reinterpret_cast<const Pack16*>(p);
        v[0] = bf16_lo(t.x); v[1] = bf16_hi(t.x); v[2] = bf16_lo(t.y); v[3] = bf16_hi(t.y);
        v[4] = bf16_lo(t.z); v[5] = bf16_hi(t.z); v[6] = bf16_lo(t.w); v[7] = bf16_hi(t.w);
    }
    __device__ static inline void store(bf16_t* p, const float* v) {
        SNCE_ASSERT_ALIGNED(p, 16);
        Pack16 t;
        t.x = bf16_pack(v[0], v[1]); t.y = bf16_pack(v[2], v[3]); t.z = bf16_pack(v[4], v[5]); t.w = bf16_pack(v[6], v[7]);
        *reinterpret_cast<Pack16*>(p) = t;
    }
};

// Per-thread partial statistics of one row, merged across the block at the end of pass 1.
//   ml, zl: running max and sum of 2^(x - ml) over the logits, x = l * log2(e)
//   ms, zs: the same over the target scores, y = s * log2(e) (mode 1)
//   a = sum 2^(y - ms) * l, b = sum 2^(y - ms) * y (mode 1; rescaled together with zs)
//   c = sum q * l, d = -sum q * ln(q) over the sparse targets (modes 0 and 2; plain sums)
struct Acc { float ml, zl, ms, zs, a, b, c, d; };

__device__ inline Acc acc_empty() {
    Acc r;
    r.ml = snce_neg_inf(); r.zl = 0.f; r.ms = snce_neg_inf(); r.zs = 0.f;
    r.a = 0.f; r.b = 0.f; r.c = 0.f; r.d = 0.f;
    return r;
}

// 2^(m - mNew), with an empty partial (m = -inf) contributing nothing (and no inf - inf).
__device__ inline float acc_rescale(float m, float mNew) { return m == snce_neg_inf() ? 0.f : exp2f(m - mNew); }

__device__ inline void acc_merge(Acc& x, const Acc& y) {
    const float ml = fmaxf(x.ml, y.ml);
    x.zl = x.zl * acc_rescale(x.ml, ml) + y.zl * acc_rescale(y.ml, ml);
    x.ml = ml;
    const float ms = fmaxf(x.ms, y.ms);
    const float fx = acc_rescale(x.ms, ms), fy = acc_rescale(y.ms, ms);
    x.zs = x.zs * fx + y.zs * fy;
    x.a = x.a * fx + y.a * fy;
    x.b = x.b * fx + y.b * fy;
    x.ms = ms;
    x.c += y.c;
    x.d += y.d;
}

__device__ inline Acc acc_shfl_xor(const Acc& v, int laneMask) {
    Acc r;
    r.ml = __shfl_xor_sync(0xffffffffu, v.ml, laneMask);
    r.zl = __shfl_xor_sync(0xffffffffu, v.zl, laneMask);
    r.ms = __shfl_xor_sync(0xffffffffu, v.ms, laneMask);
    r.zs = __shfl_xor_sync(0xffffffffu, v.zs, laneMask);
    r.a = __shfl_xor_sync(0xffffffffu, v.a, laneMask);
    r.b = __shfl_xor_sync(0xffffffffu, v.b, laneMask);
    r.c = __shfl_xor_sync(0xffffffffu, v.c, laneMask);
    r.d = __shfl_xor_sync(0xffffffffu, v.d, laneMask);
    return r;
}

__device__ inline void acc_put(float* p, const Acc& v) {
    p[0] = v.ml; p[1] = v.zl; p[2] = v.ms; p[3] = v.zs; p[4] = v.a; p[5] = v.b; p[6] = v.c; p[7] = v.d;
}
__device__ inline Acc acc_get(const float* p) {
    Acc v;
    v.ml = p[0]; v.zl = p[1]; v.ms = p[2]; v.zs = p[3]; v.a = p[4]; v.b = p[5]; v.c = p[6]; v.d = p[7];
    return v;
}

// Whole-block merge; every thread gets the result. smem holds 33 * 8 floats. blockDim.x is a multiple of 32.
__device__ inline Acc acc_block_reduce(Acc v, float* smem) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) { const Acc other = acc_shfl_xor(v, o); acc_merge(v, other); }
    if (lane == 0) acc_put(smem + warp * 8, v);
    __syncthreads();
    if (warp == 0) {
        Acc w = lane < warps ? acc_get(smem + lane * 8) : acc_empty();
        for (int o = 16; o > 0; o >>= 1) { const Acc other = acc_shfl_xor(w, o); acc_merge(w, other); }
        if (lane == 0) acc_put(smem + 32 * 8, w);
    }
    __syncthreads();
    return acc_get(smem + 32 * 8);
}

// Pass 1 over V consecutive codes starting at k0.
template <typename TL, typename TS, int V, bool DENSE>
__device__ inline void stats_step(const TL* lrow, const TS* srow, long long k0, float sScale, Acc& acc) {
    float l[V];
    Io<TL, V>::load(lrow + k0, l);
    float m = acc.ml;
#pragma unroll
    for (int i = 0; i < V; i++) m = fmaxf(m, l[i] * SNCE_LOG2E);
    if (m != snce_neg_inf()) {
        float sum = 0.f;
#pragma unroll
        for (int i = 0; i < V; i++) sum += exp2f(l[i] * SNCE_LOG2E - m);
        acc.zl = acc.zl * acc_rescale(acc.ml, m) + sum;
        acc.ml = m;
    }
    if (DENSE) {
        float s[V];
        Io<TS, V>::load(srow + k0, s);
        float y[V];
        float ms = acc.ms;
#pragma unroll
        for (int i = 0; i < V; i++) { y[i] = s[i] * sScale; ms = fmaxf(ms, y[i]); }
        if (ms != snce_neg_inf()) {
            const float f = acc_rescale(acc.ms, ms);
            float ez = 0.f, ea = 0.f, eb = 0.f;
#pragma unroll
            for (int i = 0; i < V; i++) { const float e = exp2f(y[i] - ms); ez += e; ea += e * l[i]; eb += e * y[i]; }
            acc.zs = acc.zs * f + ez;
            acc.a = acc.a * f + ea;
            acc.b = acc.b * f + eb;
            acc.ms = ms;
        }
    }
}

// Pass 2 over V consecutive codes starting at k0: grad = coef * (softmax(l) - q) (q omitted unless DENSE).
template <typename TL, typename TS, int V, bool DENSE>
__device__ inline void grad_step(const TL* lrow, const TS* srow, TL* grow, long long k0, float sScale,
                                 float lse2, float lseS2, float coef) {
    float l[V], g[V];
    Io<TL, V>::load(lrow + k0, l);
    if (DENSE) {
        float s[V];
        Io<TS, V>::load(srow + k0, s);
#pragma unroll
        for (int i = 0; i < V; i++) g[i] = coef * (exp2f(l[i] * SNCE_LOG2E - lse2) - exp2f(s[i] * sScale - lseS2));
    } else {
#pragma unroll
        for (int i = 0; i < V; i++) g[i] = coef * exp2f(l[i] * SNCE_LOG2E - lse2);
    }
    Io<TL, V>::store(grow + k0, g);
}

template <typename TL, typename TS, int V, bool DENSE>
__device__ inline void pass1(const TL* lrow, const TS* srow, long long kv, long long K, float sScale, Acc& acc) {
    const long long groups = kv / V;
#pragma unroll 2
    for (long long j = threadIdx.x; j < groups; j += blockDim.x)
        stats_step<TL, TS, V, DENSE>(lrow, srow, j * V, sScale, acc);
    for (long long k = kv + threadIdx.x; k < K; k += blockDim.x)
        stats_step<TL, TS, 1, DENSE>(lrow, srow, k, sScale, acc);
}

template <typename TL, typename TS, int V, bool DENSE>
__device__ inline void pass2(const TL* lrow, const TS* srow, TL* grow, long long kv, long long K, float sScale,
                             float lse2, float lseS2, float coef) {
    const long long groups = kv / V;
#pragma unroll 2
    for (long long j = threadIdx.x; j < groups; j += blockDim.x)
        grad_step<TL, TS, V, DENSE>(lrow, srow, grow, j * V, sScale, lse2, lseS2, coef);
    for (long long k = kv + threadIdx.x; k < K; k += blockDim.x)
        grad_step<TL, TS, 1, DENSE>(lrow, srow, grow, k, sScale, lse2, lseS2, coef);
}

template <typename TL>
__device__ inline float load_one(const TL* p) { float v[1]; Io<TL, 1>::load(p, v); return v[0]; }

template <typename TL, typename TS, int V>
__device__ inline void snce_rows(const RowArgs& a) {
    __shared__ float red[33 * 8];
    __shared__ float topL[SNCE_MAX_TOPK];
    const long long row = blockIdx.x;
    const long long K = a.K;
    const int tid = threadIdx.x, nt = blockDim.x;
    const bool dense = a.mode == 1;
    const TL* lrow = static_cast<const TL*>(a.logits) + row * a.ldLogits;
    TL* grow = a.grad ? static_cast<TL*>(a.grad) + row * a.ldGrad : (TL*)0;
    const TS* srow = dense ? static_cast<const TS*>(a.scores) + row * a.ldScores : (const TS*)0;
    float* st = a.stats + row * 4;

    // Vectors of V codes when every row pointer allows V-wide accesses; element by element otherwise.
    const bool vec = (reinterpret_cast<unsigned long long>(lrow) % (V * sizeof(TL)) == 0)
        && (!grow || reinterpret_cast<unsigned long long>(grow) % (V * sizeof(TL)) == 0)
        && (!dense || reinterpret_cast<unsigned long long>(srow) % (V * sizeof(TS)) == 0);
    const long long kv = vec ? K - K % V : 0;   // [0, kv) in vectors, [kv, K) one by one

    if (a.mask && a.mask[row] == 0) {
        if (grow) {
            float z[V];
#pragma unroll
            for (int i = 0; i < V; i++) z[i] = 0.f;
            for (long long j = tid; j < kv / V; j += nt) Io<TL, V>::store(grow + j * V, z);
            for (long long k = kv + tid; k < K; k += nt) Io<TL, 1>::store(grow + k, z);
        }
        if (tid == 0) { st[0] = 0.f; st[1] = 0.f; st[2] = 0.f; st[3] = 0.f; }
        return;
    }

    // Gather the sparse targets' logits before pass 2 may overwrite them (grad aliasing logits).
    const int nTop = a.mode == 0 ? 1 : (a.mode == 2 ? a.topK : 0);
    Acc acc = acc_empty();
    float tokL = 0.f;
    if (tid == 0) {
        const long long t = a.tokens[row];
        tokL = (t >= 0 && t < K) ? load_one<TL>(lrow + t) : snce_nan();
    }
    for (int j = tid; j < nTop; j += nt) {
        const long long idx = a.mode == 0 ? a.tokens[row] : a.topIdx[row * a.topK + j];
        const float q = a.mode == 0 ? 1.f : a.topQ[row * a.topK + j];
        const float l = (idx >= 0 && idx < K) ? load_one<TL>(lrow + idx) : snce_nan();
        topL[j] = l;
        acc.c += q * l;
        if (q > 0.f) acc.d -= q * (log2f(q) * SNCE_LN2);
    }

    const float sScale = a.scoreScale * SNCE_LOG2E;
    if (dense) pass1<TL, TS, V, true>(lrow, srow, kv, K, sScale, acc);
    else pass1<TL, TS, V, false>(lrow, srow, kv, K, sScale, acc);
    acc = acc_block_reduce(acc, red);

    const float lse2 = acc.ml + log2f(acc.zl);
    const float lse = lse2 * SNCE_LN2;
    const float lseS2 = dense ? acc.ms + log2f(acc.zs) : 0.f;
    if (tid == 0) {
        const float ql = dense ? acc.a / acc.zs : acc.c;
        const float ent = dense ? (lseS2 - acc.b / acc.zs) * SNCE_LN2 : acc.d;
        st[0] = lse - ql;
        st[1] = lse - tokL;
        st[2] = ent;
        st[3] = lse;
    }
    if (!grow) return;

    const float coef = a.coef[row];
    if (dense) {
        pass2<TL, TS, V, true>(lrow, srow, grow, kv, K, sScale, lse2, lseS2, coef);
    } else {
        pass2<TL, TS, V, false>(lrow, srow, grow, kv, K, sScale, lse2, lseS2, coef);
        __syncthreads();   // every softmax term is written before the target entries are replaced
        for (int j = tid; j < nTop; j += nt) {
            const long long idx = a.mode == 0 ? a.tokens[row] : a.topIdx[row * a.topK + j];
            const float q = a.mode == 0 ? 1.f : a.topQ[row * a.topK + j];
            if (idx >= 0 && idx < K) {
                const float g = coef * (exp2f(topL[j] * SNCE_LOG2E - lse2) - q);
                Io<TL, 1>::store(grow + idx, &g);
            }
        }
    }
}

// TL = logits/gradient element type, TS = raw score element type (mode 1 only). V = codes per vector access:
// 16 bytes of the wider of the two. Launch bounds: at most 512 threads, and registers capped (64) so that two
// blocks of 512 fit on a multiprocessor (32 warps in flight to hide memory latency).
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_bf16_bf16(RowArgs a) { snce_rows<bf16_t, bf16_t, 8>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_bf16_f32(RowArgs a) { snce_rows<bf16_t, float, 4>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_f32_bf16(RowArgs a) { snce_rows<float, bf16_t, 4>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_f32_f32(RowArgs a) { snce_rows<float, float, 4>(a); }
