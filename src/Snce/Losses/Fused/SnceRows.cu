// Row-wise fused cross-entropy against a hard, dense or sparse target: statistics and gradient.
// One thread block per row of a [R, K] block of logits. Compiled at run time with NVRTC (no NVRTC headers: the
// shared bf16 helpers, Native/Cuda/Bf16.cuh, are inlined by CudaModule.EmbeddedSource; no CUDA runtime);
// launched by FusedKernelRows.cs through the driver API on libtorch's stream 0.
// Design and measurements: docs/fused-snce.md.
//
// For row i with logits l (K values) and its target q:
//   mode 0 (hard):   q = one-hot at the token t_i (plain cross-entropy)
//   mode 1 (dense):  q = softmax(s), s = raw scores (K values) * scoreScale   (SNCE, full codebook)
//   mode 2 (sparse): q given as topK (index, probability) pairs per row      (SNCE, top-k)
//   mode 3 (top-k of the scores): q = softmax over the topK largest raw scores, selected here from the same
//                    [R, K] scores as mode 1 (SNCE, top-k without a host-side sort/select; see select_topk):
//                    pass 1 keeps each thread's 4 largest scores, which certify the row's top-k in most rows,
//                    so the scores are read once (a second gather read only where the certificate fails)
// the kernel writes stats[i] = (lse(l) - sum_k q_k l_k, lse(l) - l_{t_i}, H(q), lse(l)) and, when grad is
// set, grad[i, k] = coef_i * (softmax(l)_k - q_k). grad may alias logits: every element is read by the
// thread that writes it, before it writes it, and the sparse targets' entries are replaced after a barrier.
// Masked rows (mask[i] == 0) get zero gradient and zero statistics.
// Both log-sum-exps are online and in fp32, in base 2: x = l * log2(e), so exp2f/log2f map to the
// special-function unit. Pass 1 reads the row once (twice the bytes in mode 1: logits and scores),
// pass 2 reads it again, in reverse order (see pass2), and writes the gradient.

#include "Bf16.cuh"

#define SNCE_MAX_TOPK 1024
#define SNCE_CAND 2048          // mode 3: candidate slots per row (>= SNCE_THREAD_TOP * blockDim.x and >= 2 * topK)
#define SNCE_THREAD_TOP 4       // mode 3: each thread's largest scores kept in registers during pass 1
#define SNCE_FLAG_GATHER_ONLY 1 // RowArgs.flags: mode 3 as before issue 12's candidates (threshold from the threads' maxima, always a gather)
#define SNCE_FLAG_FORWARD_PASS2 2 // RowArgs.flags: pass 2 in pass 1's order, as before issue 12 (default: reversed)
#define SNCE_LOG2E 1.4426950408889634f
#define SNCE_LN2 0.6931471805599453f
#ifndef SNCE_ASSERT_ALIGNED
#define SNCE_ASSERT_ALIGNED(p, bytes)
#endif

// Field order: all 8-byte fields first, then 4-byte ones, so that the C# mirror (FusedKernelRows.RowArgs,
// LayoutKind.Sequential) has the same layout without padding rules to reason about: 120 bytes.
// flags (formerly a reserved 0): SNCE_FLAG_GATHER_ONLY and SNCE_FLAG_FORWARD_PASS2 select the kernel's previous
// behaviour (both set: the kernel before issue 12), for side-by-side benchmarks; 0 for the default paths.
struct RowArgs {
    const void* logits;          // [R, ldLogits] TL
    void* grad;                  // [R, ldGrad] TL or null (statistics only)
    const void* scores;          // [R, ldScores] TS raw scores (mode 1) or null
    const long long* tokens;     // [R] nearest code per row (hard-CE term; the target in mode 0)
    long long* topIdx;           // [R, topK]: read in mode 2; written in mode 3 when not null
    float* topQ;                 // [R, topK]: read in mode 2; written in mode 3 when not null
    const float* coef;           // [R] gradient weight m_i w_i / sum(m)
    const unsigned char* mask;   // [R] bool, or null: every row supervised
    float* stats;                // [R, 4]
    long long ldLogits;          // row strides, in elements
    long long ldGrad;
    long long ldScores;
    long long K;                 // codes per row
    float scoreScale;            // 1 / tau
    int mode;                    // 0 hard, 1 dense, 2 sparse, 3 top-k of the scores
    int topK;                    // modes 2, 3: pairs per row, <= SNCE_MAX_TOPK (mode 3: <= blockDim.x and <= SNCE_CAND / 2)
    int flags;                   // SNCE_FLAG_* bits; 0 for the default paths
};

__device__ inline float snce_neg_inf() { return __int_as_float(0xff800000); }
__device__ inline float snce_nan() { return __int_as_float(0x7fc00000); }

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
    __device__ static inline void store(bf16_t* p, const float* v) { p[0] = f2bf(v[0]); }
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

// Adds one target entry (logit l, base-2 score y) to the dense-target fields of acc (ms, zs, a, b): mode 3's k codes.
__device__ inline void acc_add_target(Acc& acc, float l, float y) {
    const float ms = fmaxf(acc.ms, y);
    const float f = acc_rescale(acc.ms, ms);
    const float e = exp2f(y - ms);
    acc.zs = acc.zs * f + e;
    acc.a = acc.a * f + e * l;
    acc.b = acc.b * f + e * y;
    acc.ms = ms;
}

// Mode 3: a thread's SNCE_THREAD_TOP largest base-2 scores seen so far (v descending, -inf = empty) and their codes.
// A score enters only when strictly larger than the smallest kept one, so every score the thread saw and did not
// keep is <= v[SNCE_THREAD_TOP - 1] (the certificate in select_topk rests on this).
struct ThreadTop { float v[SNCE_THREAD_TOP]; int i[SNCE_THREAD_TOP]; };

__device__ inline ThreadTop top_empty() {
    ThreadTop t;
#pragma unroll
    for (int j = 0; j < SNCE_THREAD_TOP; j++) { t.v[j] = snce_neg_inf(); t.i[j] = -1; }
    return t;
}

__device__ inline void top_add(ThreadTop& t, float y, int code) {
    if (!(y > t.v[SNCE_THREAD_TOP - 1])) return;   // also drops NaN
    t.v[SNCE_THREAD_TOP - 1] = y; t.i[SNCE_THREAD_TOP - 1] = code;
#pragma unroll
    for (int j = SNCE_THREAD_TOP - 1; j > 0; j--) {
        if (t.v[j] > t.v[j - 1]) {
            const float tv = t.v[j]; t.v[j] = t.v[j - 1]; t.v[j - 1] = tv;
            const int ti = t.i[j]; t.i[j] = t.i[j - 1]; t.i[j - 1] = ti;
        }
    }
}

// Pass 1 over V consecutive codes starting at k0. M: 0 logits only, 1 logits and dense scores, 3 logits and the
// thread's largest base-2 scores (mode 3's candidates; top.v[0] is its maximum).
template <typename TL, typename TS, int V, int M>
__device__ inline void stats_step(const TL* lrow, const TS* srow, long long k0, float sScale, Acc& acc, ThreadTop& top) {
    constexpr bool DENSE = M == 1;
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
    if (M == 3) {
        float s[V];
        Io<TS, V>::load(srow + k0, s);
#pragma unroll
        for (int i = 0; i < V; i++) top_add(top, s[i] * sScale, (int)(k0 + i));
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

template <typename TL, typename TS, int V, int M>
__device__ inline void pass1(const TL* lrow, const TS* srow, long long kv, long long K, float sScale, Acc& acc, ThreadTop& top) {
    const long long groups = kv / V;
#pragma unroll 2
    for (long long j = threadIdx.x; j < groups; j += blockDim.x)
        stats_step<TL, TS, V, M>(lrow, srow, j * V, sScale, acc, top);
    for (long long k = kv + threadIdx.x; k < K; k += blockDim.x)
        stats_step<TL, TS, 1, M>(lrow, srow, k, sScale, acc, top);
}

// Calls f(code, y) for this thread's share of the row's base-2 scores y = s * sScale (the expression pass 1 uses,
// so every pass sees bit-identical y).
template <typename TS, int V, typename F>
__device__ inline void for_scores(const TS* srow, long long kv, long long K, float sScale, F f) {
    const long long groups = kv / V;
    for (long long j = threadIdx.x; j < groups; j += blockDim.x) {
        float s[V];
        Io<TS, V>::load(srow + j * V, s);
#pragma unroll
        for (int i = 0; i < V; i++) f(j * V + i, s[i] * sScale);
    }
    for (long long k = kv + threadIdx.x; k < K; k += blockDim.x) {
        float s[1];
        Io<TS, 1>::load(srow + k, s);
        f(k, s[0] * sScale);
    }
}

// Sum over the block (every thread gets it); smem holds 33 floats. Exact for counts below 2^24.
__device__ inline float block_sum(float v, float* smem) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();   // smem may still be read by a previous call
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? smem[lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xffffffffu, w, o);
        if (lane == 0) smem[32] = w;
    }
    __syncthreads();
    return smem[32];
}

// Sorts v[0, n) (with idx alongside) in descending order; n a power of two; all threads of the block take part.
__device__ inline void bitonic_desc(float* v, int* idx, int n) {
    for (int size = 2; size <= n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const bool desc = (i & size) == 0;
                    const float vi = v[i], vj = v[j];
                    if (desc ? vi < vj : vi > vj) {
                        v[i] = vj; v[j] = vi;
                        const int t = idx[i]; idx[i] = idx[j]; idx[j] = t;
                    }
                }
            }
            __syncthreads();
        }
    }
}

// Mode 3: the topK largest base-2 scores of the row into cv[0, topK) (descending) and their codes into ci.
// top holds this thread's SNCE_THREAD_TOP largest scores from pass 1. They are gathered (C, SNCE_THREAD_TOP per
// thread) and sorted; T = the topK-th largest of C. Certificate: a score outside C is <= its thread's smallest kept
// score, so when no thread's smallest kept score exceeds T, no score outside C exceeds T and C's first topK are a
// top-k of the row (ties at T aside): the scores are read once, by pass 1. Otherwise (some thread holds more than
// SNCE_THREAD_TOP of the row's largest scores) the gather below runs from T, a lower bound of the topK-th largest
// score (C has topK scores >= T): scores > T from the front of the slots, ties == T from the back, sorted, the first
// topK kept. When more than SNCE_CAND - topK scores exceed T, T is raised by bisection towards the row's maximum,
// keeping count(>= T) >= topK, and the gather repeated. With SNCE_FLAG_GATHER_ONLY, T is the topK-th largest of the
// threads' maxima and the gather always runs (the selection before issue 12's candidates). Needs topK <= the number
// of threads that own a score, or K <= SNCE_CAND - topK (the host keeps topK <= 128 <= blockDim.x), and
// SNCE_THREAD_TOP * blockDim.x <= SNCE_CAND, a power of two.
template <typename TS, int V>
__device__ inline void select_topk(const TS* srow, long long kv, long long K, float sScale, int topK, const ThreadTop& top,
                                   bool gatherOnly, float* cv, int* ci, float* red) {
    __shared__ int nGt, nEq, uncertain;
    const int tid = threadIdx.x, nt = blockDim.x;
    if (gatherOnly) {
        cv[tid] = top.v[0];
        ci[tid] = tid;
        __syncthreads();
        bitonic_desc(cv, ci, nt);
    } else {
#pragma unroll
        for (int j = 0; j < SNCE_THREAD_TOP; j++) { cv[tid * SNCE_THREAD_TOP + j] = top.v[j]; ci[tid * SNCE_THREAD_TOP + j] = top.i[j]; }
        if (tid == 0) uncertain = 0;
        __syncthreads();
        bitonic_desc(cv, ci, SNCE_THREAD_TOP * nt);
        if (top.v[SNCE_THREAD_TOP - 1] > cv[topK - 1]) uncertain = 1;   // every writer writes 1
        __syncthreads();
        if (!uncertain) return;                                         // the same value in every thread
    }
    float lo = cv[topK - 1], hi = cv[0];
    const int room = SNCE_CAND - topK;              // front slots for scores > T; the last topK slots take ties == T
    for (int attempt = 0;; attempt++) {
        __syncthreads();                            // cv, ci, nGt free to overwrite
        for (int i = tid; i < SNCE_CAND; i += nt) { cv[i] = snce_neg_inf(); ci[i] = -1; }
        if (tid == 0) { nGt = 0; nEq = 0; }
        __syncthreads();
        // Scores > T: at most room of them (count(>= T) <= room), or, after a tie break, fewer than topK (count(>= hi) <
        // topK) or all equal to the row's maximum (any of them will do). Ties == T: topK suffice.
        const float T = lo;
        for_scores<TS, V>(srow, kv, K, sScale, [&](long long k, float y) {
            if (y > T) {
                const int slot = atomicAdd(&nGt, 1);
                if (slot < room) { cv[slot] = y; ci[slot] = (int)k; }
            } else if (y == T) {
                const int t = atomicAdd(&nEq, 1);
                if (t < topK) { cv[SNCE_CAND - 1 - t] = y; ci[SNCE_CAND - 1 - t] = (int)k; }
            }
        });
        __syncthreads();
        if (nGt <= room || attempt == 1) break;     // the usual case: one gather
        // More than room scores above lo: raise lo by bisection (count passes), keeping count(>= lo) >= topK.
        float cLo = (float)(nGt + nEq);
        while (cLo > room) {
            const float mid = lo + 0.5f * (hi - lo);
            if (!(mid > lo && mid < hi)) break;      // lo and hi adjacent: the excess are ties at lo
            float count = 0.f;
            for_scores<TS, V>(srow, kv, K, sScale, [&](long long, float y) { if (y >= mid) count += 1.f; });
            const float c = block_sum(count, red);
            if (c >= topK) { lo = mid; cLo = c; } else hi = mid;
        }
    }
    bitonic_desc(cv, ci, SNCE_CAND);
}

// Pass 2. reverse: each thread walks its codes in the reverse of pass 1's order (the scalar tail first, then its
// vectors from the last), so that it starts with what pass 1 read last, the part of the row most likely still in L2
// (of 50 MB on the H100/H200, about 190 KB per resident row at 264 rows in flight). The same elements and values
// either way; forward is the order before issue 12 (SNCE_FLAG_FORWARD_PASS2).
template <typename TL, typename TS, int V, bool DENSE>
__device__ inline void pass2(const TL* lrow, const TS* srow, TL* grow, long long kv, long long K, float sScale,
                             float lse2, float lseS2, float coef, bool reverse) {
    const long long groups = kv / V;
    const long long t = threadIdx.x, nt = blockDim.x;
    if (reverse) {
        for (long long k = kv + t; k < K; k += nt)
            grad_step<TL, TS, 1, DENSE>(lrow, srow, grow, k, sScale, lse2, lseS2, coef);
        if (t < groups) {
#pragma unroll 2
            for (long long j = t + (groups - 1 - t) / nt * nt; j >= 0; j -= nt)
                grad_step<TL, TS, V, DENSE>(lrow, srow, grow, j * V, sScale, lse2, lseS2, coef);
        }
        return;
    }
#pragma unroll 2
    for (long long j = t; j < groups; j += nt)
        grad_step<TL, TS, V, DENSE>(lrow, srow, grow, j * V, sScale, lse2, lseS2, coef);
    for (long long k = kv + t; k < K; k += nt)
        grad_step<TL, TS, 1, DENSE>(lrow, srow, grow, k, sScale, lse2, lseS2, coef);
}

template <typename TL>
__device__ inline float load_one(const TL* p) { float v[1]; Io<TL, 1>::load(p, v); return v[0]; }

// SELECT: the mode-3 kernel (its own entry points, so that the other modes' code, registers and shared memory are
// what they were without it).
template <typename TL, typename TS, int V, bool SELECT>
__device__ inline void snce_rows(const RowArgs& a) {
    __shared__ float red[33 * 8];
    __shared__ float topL[SNCE_MAX_TOPK];
    __shared__ float candV[SELECT ? SNCE_CAND : 1];   // mode 3: candidate scores (base 2), then the top-k first
    __shared__ int candI[SELECT ? SNCE_CAND : 1];     // and their codes
    const long long row = blockIdx.x;
    const long long K = a.K;
    const int tid = threadIdx.x, nt = blockDim.x;
    const bool dense = !SELECT && a.mode == 1;
    constexpr bool select = SELECT;        // mode 3: reads the scores like mode 1, then targets like mode 2
    const TL* lrow = static_cast<const TL*>(a.logits) + row * a.ldLogits;
    TL* grow = a.grad ? static_cast<TL*>(a.grad) + row * a.ldGrad : (TL*)0;
    const TS* srow = dense || select ? static_cast<const TS*>(a.scores) + row * a.ldScores : (const TS*)0;
    float* st = a.stats + row * 4;

    // Vectors of V codes when every row pointer allows V-wide accesses; element by element otherwise.
    const bool vec = (reinterpret_cast<unsigned long long>(lrow) % (V * sizeof(TL)) == 0)
        && (!grow || reinterpret_cast<unsigned long long>(grow) % (V * sizeof(TL)) == 0)
        && (!srow || reinterpret_cast<unsigned long long>(srow) % (V * sizeof(TS)) == 0);
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
    const int nTop = SELECT ? 0 : a.mode == 0 ? 1 : (a.mode == 2 ? a.topK : 0);
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
    ThreadTop top = top_empty();   // mode 3 only (unused, and optimized away, in the others)
    if (dense) pass1<TL, TS, V, 1>(lrow, srow, kv, K, sScale, acc, top);
    else if (select) pass1<TL, TS, V, 3>(lrow, srow, kv, K, sScale, acc, top);
    else pass1<TL, TS, V, 0>(lrow, srow, kv, K, sScale, acc, top);
    if constexpr (SELECT) {
        // The k codes, then their logits (saved before pass 2 may overwrite them) into the dense-target fields.
        select_topk<TS, V>(srow, kv, K, sScale, a.topK, top, (a.flags & SNCE_FLAG_GATHER_ONLY) != 0, candV, candI, red);
        for (int j = tid; j < a.topK; j += nt) {
            const float l = load_one<TL>(lrow + candI[j]);
            topL[j] = l;
            acc_add_target(acc, l, candV[j]);
        }
    }
    acc = acc_block_reduce(acc, red);

    const float lse2 = acc.ml + log2f(acc.zl);
    const float lse = lse2 * SNCE_LN2;
    const bool softStats = dense || select;  // q from (ms, zs, a, b): over all codes (mode 1) or the k selected (mode 3)
    const float lseS2 = softStats ? acc.ms + log2f(acc.zs) : 0.f;
    if (SELECT && a.topIdx) {
        for (int j = tid; j < a.topK; j += nt) {
            a.topIdx[row * a.topK + j] = candI[j];
            a.topQ[row * a.topK + j] = exp2f(candV[j] - lseS2);
        }
    }
    if (tid == 0) {
        const float ql = softStats ? acc.a / acc.zs : acc.c;
        const float ent = softStats ? (lseS2 - acc.b / acc.zs) * SNCE_LN2 : acc.d;
        st[0] = lse - ql;
        st[1] = lse - tokL;
        st[2] = ent;
        st[3] = lse;
    }
    if (!grow) return;

    const float coef = a.coef[row];
    const bool reverse = (a.flags & SNCE_FLAG_FORWARD_PASS2) == 0;
    if (dense) {
        pass2<TL, TS, V, true>(lrow, srow, grow, kv, K, sScale, lse2, lseS2, coef, reverse);
    } else if (select) {
        pass2<TL, TS, V, false>(lrow, srow, grow, kv, K, sScale, lse2, lseS2, coef, reverse);
        __syncthreads();   // every softmax term is written before the target entries are replaced
        for (int j = tid; j < a.topK; j += nt) {
            const float g = coef * (exp2f(topL[j] * SNCE_LOG2E - lse2) - exp2f(candV[j] - lseS2));
            Io<TL, 1>::store(grow + candI[j], &g);
        }
    } else {
        pass2<TL, TS, V, false>(lrow, srow, grow, kv, K, sScale, lse2, lseS2, coef, reverse);
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

// TL = logits/gradient element type, TS = raw score element type (modes 1 and 3). V = codes per vector access:
// 16 bytes of the wider of the two. Launch bounds: at most 512 threads, and registers capped (64) so that two
// blocks of 512 fit on a multiprocessor (32 warps in flight to hide memory latency).
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_bf16_bf16(RowArgs a) { snce_rows<bf16_t, bf16_t, 8, false>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_bf16_f32(RowArgs a) { snce_rows<bf16_t, float, 4, false>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_f32_bf16(RowArgs a) { snce_rows<float, bf16_t, 4, false>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_f32_f32(RowArgs a) { snce_rows<float, float, 4, false>(a); }
// Mode 3 only (RowArgs.mode must be 3): top-k selected from the scores.
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_topk_bf16_bf16(RowArgs a) { snce_rows<bf16_t, bf16_t, 8, true>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_topk_bf16_f32(RowArgs a) { snce_rows<bf16_t, float, 4, true>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_topk_f32_bf16(RowArgs a) { snce_rows<float, bf16_t, 4, true>(a); }
extern "C" __global__ void __launch_bounds__(512, 2) snce_rows_topk_f32_f32(RowArgs a) { snce_rows<float, float, 4, true>(a); }
