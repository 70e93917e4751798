/* The decode projections (see cuda_gemv.h): one warp per output row, 16-byte weight loads marked streaming (read
 * once, kept out of L1), four in flight per lane before the first use; activations read through the read-only
 * cache (they are small and every warp of the grid reads them). */
#include <cuda_bf16.h>

#include "backend/cuda/cuda_gemv.h"

#define GEMV_WARPS 8 /* rows per block of 256 threads */
#define GEMV_UNROLL 4

__device__ static inline float gv_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* the 8 bf16 of a 16-byte vector as f32 (exact: a bf16 is the top half of an f32) */
__device__ static inline void unpack8_bf16(uint4 w, float *f) {
    const uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(u[i] << 16);
        f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}

__device__ static inline void unpack8_f16(uint4 w, float *f) {
    const uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __half2 h;
        memcpy(&h, &u[i], 4);
        const float2 v = __half22float2(h);
        f[2 * i] = v.x;
        f[2 * i + 1] = v.y;
    }
}

/* Elements per 16-byte vector of a type. */
template <int WT> struct gv_vec { static const int n = WT == GW_F32 ? 4 : WT == GW_Q8_0 ? 16 : 8; };

/* acc[r] += row `row` of matrix m dotted with activation row r, this lane's share (vectors lane, lane + 32, ...). */
template <int WT, int NR>
__device__ static inline void gv_dot(const gemv_args &a, const void *mw, const __half *ms, int row, int lane,
                                     float *acc) {
    const int VEC = gv_vec<WT>::n, n_in = a.n_in, nv = n_in / VEC;
    const uint4 *W = (const uint4 *)((const char *)mw + (size_t)row * n_in * (WT == GW_F32 ? 4 : WT == GW_Q8_0 ? 1 : 2));
    for (int c0 = lane; c0 < nv; c0 += 32 * GEMV_UNROLL) {
        uint4 w[GEMV_UNROLL];
        float sc[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            const int c = c0 + 32 * u;
            w[u] = c < nv ? __ldcs(W + c) : make_uint4(0, 0, 0, 0);
            if (WT == GW_Q8_0) sc[u] = c < nv ? __half2float(ms[(size_t)row * (n_in / 32) + (c >> 1)]) : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            const int c = c0 + 32 * u;
            if (c >= nv) break;
            if (WT == GW_Q8_0) {
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    const int4 q = __ldg((const int4 *)(a.xq + (size_t)r * n_in) + c);
                    int s = __dp4a((int)w[u].x, q.x, 0);
                    s = __dp4a((int)w[u].y, q.y, s);
                    s = __dp4a((int)w[u].z, q.z, s);
                    s = __dp4a((int)w[u].w, q.w, s);
                    acc[r] += sc[u] * __ldg(a.xd + (size_t)r * (n_in / 32) + (c >> 1)) * (float)s;
                }
            } else if (WT == GW_F32) {
                const float f[4] = {__uint_as_float(w[u].x), __uint_as_float(w[u].y), __uint_as_float(w[u].z),
                                    __uint_as_float(w[u].w)};
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    const float4 x = __ldg((const float4 *)(a.x + (size_t)r * n_in) + c);
                    acc[r] += f[0] * x.x + f[1] * x.y + f[2] * x.z + f[3] * x.w;
                }
            } else {
                float f[8];
                if (WT == GW_BF16) unpack8_bf16(w[u], f);
                else unpack8_f16(w[u], f);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    const float4 *xv = (const float4 *)(a.x + (size_t)r * n_in) + 2 * c;
                    const float4 x0 = __ldg(xv), x1 = __ldg(xv + 1);
                    acc[r] += f[0] * x0.x + f[1] * x0.y + f[2] * x0.z + f[3] * x0.w + f[4] * x1.x + f[5] * x1.y +
                              f[6] * x1.z + f[7] * x1.w;
                }
            }
        }
    }
}

template <int WT, int NR> __global__ void __launch_bounds__(32 * GEMV_WARPS) k_gemv(const gemv_args a) {
    const int lane = threadIdx.x & 31;
    int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    /* which matrix: selects rather than an indexed parameter array (which would go through local memory) */
    const void *mw = a.m[0].w;
    const __half *ms = a.m[0].s;
    float *my = a.m[0].y;
    int rows = a.m[0].rows;
    if (a.mode != GEMV_SWIGLU && row >= rows && a.nm > 1) {
        row -= rows;
        mw = a.m[1].w, ms = a.m[1].s, my = a.m[1].y, rows = a.m[1].rows;
        if (row >= rows && a.nm > 2) {
            row -= rows;
            mw = a.m[2].w, ms = a.m[2].s, my = a.m[2].y, rows = a.m[2].rows;
        }
    }
    if (row >= rows) return; /* the whole warp */
    float acc[NR], acc2[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = acc2[r] = 0.0f;
    gv_dot<WT, NR>(a, mw, ms, row, lane, acc);
    if (a.mode == GEMV_SWIGLU) gv_dot<WT, NR>(a, a.m[1].w, a.m[1].s, row, lane, acc2);
#pragma unroll
    for (int r = 0; r < NR; r++) {
        const float v = gv_warp_sum(acc[r]);
        if (a.mode == GEMV_SWIGLU) {
            const float u = gv_warp_sum(acc2[r]);
            if (lane == 0) my[(size_t)r * rows + row] = v / (1.0f + expf(-v)) * u;
        } else if (lane == 0) {
            float *y = my + (size_t)r * rows + row;
            *y = a.mode == GEMV_ADD ? *y + v : v;
        }
    }
}

/* One warp per block of 32 values. */
__global__ void k_quantize_x(const float *x, int8_t *xq, float *xd, int nblocks) {
    const int b = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (b >= nblocks) return;
    const float v = x[(size_t)b * 32 + lane];
    float amax = fabsf(v);
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    int q = __float2int_rn(v * id);
    q = q > 127 ? 127 : q < -128 ? -128 : q;
    xq[(size_t)b * 32 + lane] = (int8_t)q;
    if (lane == 0) xd[b] = d;
}

void gemv_quantize_x(const float *x, int8_t *xq, float *xd, int n, int n_in, cudaStream_t st) {
    const int nb = n * (n_in / 32);
    k_quantize_x<<<(nb + 7) / 8, 256, 0, st>>>(x, xq, xd, nb);
}

template <int WT> static void launch_type(const gemv_args *a, int n, unsigned grid, cudaStream_t st) {
    switch (n) {
    case 1: k_gemv<WT, 1><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    case 2: k_gemv<WT, 2><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    case 3: k_gemv<WT, 3><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    case 4: k_gemv<WT, 4><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    case 5: k_gemv<WT, 5><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    case 6: k_gemv<WT, 6><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    case 7: k_gemv<WT, 7><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    default: k_gemv<WT, 8><<<grid, 32 * GEMV_WARPS, 0, st>>>(*a); break;
    }
}

void gemv_launch(const gemv_args *a, int type, int n, cudaStream_t st) {
    long long rows = 0;
    if (a->mode == GEMV_SWIGLU) rows = a->m[0].rows;
    else
        for (int i = 0; i < a->nm; i++) rows += a->m[i].rows;
    const unsigned grid = (unsigned)((rows + GEMV_WARPS - 1) / GEMV_WARPS);
    switch (type) {
    case GW_F32: launch_type<GW_F32>(a, n, grid, st); break;
    case GW_F16: launch_type<GW_F16>(a, n, grid, st); break;
    case GW_BF16: launch_type<GW_BF16>(a, n, grid, st); break;
    default: launch_type<GW_Q8_0>(a, n, grid, st); break;
    }
}

__global__ void k_q8_to_f16(const int8_t *qs, const __half *s, __half *out, long long r0, long long n, int n_in) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long r = r0 + i / n_in, k = i % n_in;
    out[i] = __float2half_rn(__half2float(s[r * (n_in / 32) + k / 32]) * (float)qs[r * n_in + k]);
}

void q8_to_f16(const int8_t *qs, const __half *s, __half *out, long long r0, long long nr, int n_in,
               cudaStream_t st) {
    const long long n = nr * n_in;
    k_q8_to_f16<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(qs, s, out, r0, n, n_in);
}
