// Fused transformer-block kernels, forward and backward: RMSNorm, 2-D rotary on the fused q/k/v projection,
// and the SwiGLU gate. Each replaces a chain of libtorch elementwise kernels (casts to fp32, powers, means,
// products, cats, narrow-backward fills) that the profile in docs/benchmarks/training.md shows taking most of
// a step's GPU time. Compiled at run time with NVRTC (no NVRTC headers: the shared bf16
// helpers, Native/Cuda/Bf16.cuh, are inlined by CudaModule.EmbeddedSource); launched by BlockKernels.cs through the
// driver API on libtorch's stream 0. The same source compiles as C++ for the CPU emulator the tests use.
//
// Arithmetic is fp32 whatever T is; values are rounded to T where the libtorch reference rounds
// (src/Snce/Models/RmsNorm.cs, Rotary2d.cs, SwiGlu.cs), so bf16 results match it to bf16 rounding.

#include "Bf16.cuh"

// Field order: pointers first, then 8-byte integers, then 4-byte values, so that the C# mirror
// (BlockKernels.Args, LayoutKind.Sequential) needs no padding rules: 13*8 + 5*8 + 2*4 = 152 bytes.
struct BlockArgs {
    const void* x;        // rmsnorm: x [rows, dim]; rope: qkv [B, S, 3, H, hd]; swiglu: gv [rows, 2*dim]
    const void* w;        // rmsnorm: weight [dim]
    const void* gy;       // backward: gradient of the output (rope: of q)
    const void* gy2;      // rope backward: gradient of k
    const void* gy3;      // rope backward: gradient of v
    void* y;              // forward output (rope: q [B, H, S, hd]); backward: gradient of x
    void* y2;             // rope forward: k [B, H, S, hd]
    void* y3;             // rope forward: v [B, H, S, hd]
    float* rstd;          // rmsnorm: 1/rms per row [rows] (written forward, read backward)
    float* partial;       // rmsnorm backward: per-block partial sums of the weight gradient [grid, dim]
    const float* cosT;    // rope: cos [slots, hd/2]
    const float* sinT;    // rope: sin [slots, hd/2]
    const void* unused;
    long long rows;       // rmsnorm/swiglu: rows; rope: batch B
    long long dim;        // rmsnorm: dim; swiglu: hidden h; rope: sequence S
    long long heads;      // rope: H
    long long headDim;    // rope: hd
    long long start;      // rope: slot of the first position
    float eps;            // rmsnorm ε
    int rowsPerBlock;     // rmsnorm backward: rows each block accumulates
};

#define BLK_MAX_DIM 1024
#define BLK_WARPS 8

__device__ inline float warp_sum(float v) {
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

// RMSNorm forward: one warp per row. rstd = 1/sqrt(mean(x^2) + eps); y = T(T(x * rstd) * w).
template <typename T>
__device__ void rmsnorm_fwd(const BlockArgs& a) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long row = (long long)blockIdx.x * BLK_WARPS + warp;
    const long long d = a.dim;
    const bool active = row < a.rows;
    const long long base = (active ? row : 0) * d;
    float ss = 0.f;
    if (active)
        for (long long j = lane; j < d; j += 32) { const float v = Elem<T>::load(a.x, base + j); ss += v * v; }
    ss = warp_sum(ss);
    if (!active) return;
    const float r = 1.0f / sqrtf(ss / (float)d + a.eps);
    if (lane == 0) a.rstd[row] = r;
    for (long long j = lane; j < d; j += 32) {
        const float n = Elem<T>::round(Elem<T>::load(a.x, base + j) * r);
        Elem<T>::store(a.y, base + j, n * Elem<T>::load(a.w, j));
    }
}

// RMSNorm backward. n = x*rstd, g = gy*w: gx = rstd*(g - n*mean(g*n)); gw = sum over rows of gy*T(n).
// Block b handles rows [b*rowsPerBlock, (b+1)*rowsPerBlock), a warp per row at a time; the weight gradient is
// accumulated per warp in shared memory, then summed over the block's warps into partial[b, :].
template <typename T>
__device__ void rmsnorm_bwd(const BlockArgs& a) {
    __shared__ float acc[BLK_WARPS][BLK_MAX_DIM];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long d = a.dim;
    for (long long j = lane; j < d; j += 32) acc[warp][j] = 0.f;
    const long long first = (long long)blockIdx.x * a.rowsPerBlock;
    long long last = first + a.rowsPerBlock;
    if (last > a.rows) last = a.rows;
    for (long long row = first + warp; row < last; row += BLK_WARPS) {
        const long long base = row * d;
        const float r = a.rstd[row];
        float dot = 0.f;
        for (long long j = lane; j < d; j += 32) {
            const float gy = Elem<T>::load(a.gy, base + j);
            const float n = Elem<T>::load(a.x, base + j) * r;
            dot += gy * Elem<T>::load(a.w, j) * n;
            acc[warp][j] += gy * Elem<T>::round(n);
        }
        dot = warp_sum(dot) / (float)d;
        for (long long j = lane; j < d; j += 32) {
            const float g = Elem<T>::load(a.gy, base + j) * Elem<T>::load(a.w, j);
            const float n = Elem<T>::load(a.x, base + j) * r;
            Elem<T>::store(a.y, base + j, r * (g - n * dot));
        }
    }
    __syncthreads();
    for (long long j = threadIdx.x; j < d; j += blockDim.x) {
        float s = 0.f;
        for (int w = 0; w < BLK_WARPS; w++) s += acc[w][j];
        a.partial[(long long)blockIdx.x * d + j] = s;
    }
}

// Where rotary thread t reads and writes: its element i < hd/2 of q in the packed [B, S, 3, H, hd] layout, of q in the
// split [B, H, S, hd] layout, the q -> k -> v stride of the packed one, and the slot's cos/sin.
struct RopeIndex {
    long long packed, split, g;
    float c, sn;
};

__device__ inline RopeIndex rope_index(const BlockArgs& a, long long t) {
    const long long half = a.headDim / 2;
    const long long i = t % half;
    long long rest = t / half;
    const long long h = rest % a.heads; rest /= a.heads;
    const long long s = rest % a.dim;
    const long long b = rest / a.dim;
    RopeIndex r;
    r.packed = ((b * a.dim + s) * 3) * a.heads * a.headDim + h * a.headDim + i;
    r.split = ((b * a.heads + h) * a.dim + s) * a.headDim + i;
    r.g = a.heads * a.headDim;
    r.c = a.cosT[(a.start + s) * half + i];
    r.sn = a.sinT[(a.start + s) * half + i];
    return r;
}

// Rotary on the fused projection, forward: qkv [B, S, 3, H, hd] (contiguous) -> q, k rotated and v copied, each
// [B, H, S, hd] contiguous (the layout attention reads). One thread per (b, s, h, i < hd/2): the pair (i, i + hd/2)
// of q and of k rotates by the slot's angle ("rotate half": y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin).
template <typename T>
__device__ void rope_fwd(const BlockArgs& a) {
    const long long half = a.headDim / 2;
    const long long total = a.rows * a.dim * a.heads * half;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
        const RopeIndex r = rope_index(a, t);
        const long long in = r.packed, g = r.g, out = r.split;
        const float c = r.c, sn = r.sn;
        void* outs[2] = {a.y, a.y2};
        for (int q = 0; q < 2; q++) {
            const float x1 = Elem<T>::load(a.x, in + q * g), x2 = Elem<T>::load(a.x, in + q * g + half);
            Elem<T>::store(outs[q], out, x1 * c - x2 * sn);
            Elem<T>::store(outs[q], out + half, x2 * c + x1 * sn);
        }
        Elem<T>::store(a.y3, out, Elem<T>::load(a.x, in + 2 * g));
        Elem<T>::store(a.y3, out + half, Elem<T>::load(a.x, in + 2 * g + half));
    }
}

// Rotary backward: gq, gk, gv [B, H, S, hd] (contiguous) -> gqkv [B, S, 3, H, hd]: the inverse rotation
// (gx1 = gy1 cos + gy2 sin, gx2 = gy2 cos - gy1 sin) for q and k, a copy for v.
template <typename T>
__device__ void rope_bwd(const BlockArgs& a) {
    const long long half = a.headDim / 2;
    const long long total = a.rows * a.dim * a.heads * half;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
        const RopeIndex r = rope_index(a, t);
        const long long out = r.packed, g = r.g, in = r.split;
        const float c = r.c, sn = r.sn;
        const void* ins[2] = {a.gy, a.gy2};
        for (int q = 0; q < 2; q++) {
            const float y1 = Elem<T>::load(ins[q], in), y2 = Elem<T>::load(ins[q], in + half);
            Elem<T>::store(a.y, out + q * g, y1 * c + y2 * sn);
            Elem<T>::store(a.y, out + q * g + half, y2 * c - y1 * sn);
        }
        Elem<T>::store(a.y, out + 2 * g, Elem<T>::load(a.gy3, in));
        Elem<T>::store(a.y, out + 2 * g + half, Elem<T>::load(a.gy3, in + half));
    }
}

__device__ inline float sigmoidf_(float x) { return 1.f / (1.f + expf(-x)); }

// SwiGLU gate, forward: gv [rows, 2h] (gate | value) -> y [rows, h] = T(T(silu(g)) * v).
template <typename T>
__device__ void swiglu_fwd(const BlockArgs& a) {
    const long long h = a.dim, total = a.rows * h;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
        const long long r = t / h, j = t % h;
        const float g = Elem<T>::load(a.x, r * 2 * h + j), v = Elem<T>::load(a.x, r * 2 * h + h + j);
        Elem<T>::store(a.y, t, Elem<T>::round(g * sigmoidf_(g)) * v);
    }
}

// SwiGLU backward: gy [rows, h] -> ggv [rows, 2h]: d/dg = gy v silu'(g), d/dv = gy silu(g),
// silu'(g) = s (1 + g (1 - s)), s = sigmoid(g).
template <typename T>
__device__ void swiglu_bwd(const BlockArgs& a) {
    const long long h = a.dim, total = a.rows * h;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x) {
        const long long r = t / h, j = t % h;
        const float g = Elem<T>::load(a.x, r * 2 * h + j), v = Elem<T>::load(a.x, r * 2 * h + h + j);
        const float gy = Elem<T>::load(a.gy, t);
        const float s = sigmoidf_(g);
        Elem<T>::store(a.y, r * 2 * h + j, gy * v * s * (1.f + g * (1.f - s)));
        Elem<T>::store(a.y, r * 2 * h + h + j, gy * Elem<T>::round(g * s));
    }
}

#define BLK_KERNEL(name, T, suffix) \
    extern "C" __global__ void name##_##suffix(BlockArgs a) { name<T>(a); }
#define BLK_BOTH(name) BLK_KERNEL(name, float, f32) BLK_KERNEL(name, bf16_t, bf16)

BLK_BOTH(rmsnorm_fwd)
BLK_BOTH(rmsnorm_bwd)
BLK_BOTH(rope_fwd)
BLK_BOTH(rope_bwd)
BLK_BOTH(swiglu_fwd)
BLK_BOTH(swiglu_bwd)
