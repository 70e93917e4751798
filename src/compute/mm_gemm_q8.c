/* Q8_0 prefill GEMM in integer arithmetic (AVX2 only): activations quantized to int8 per 32 values as in the
 * decode path (same error bound, see mm_gemv_quant.c), weights kept as int8.
 *
 * Why: on Zen 3 an f32 FMA does 8 multiply-adds; maddubs + madd do 32 (byte pairs, then word pairs) on the two
 * multiply pipes while sign/add use the other two, so the integer kernel has about twice the f32 ceiling.
 *
 * Layouts (groups of 4 k, so a 32-bit lane holds the 4 bytes one maddubs+madd reduces):
 *   activations, per tile of 4 tokens: int32 X[n_in / 4][4] (4 int8 of token t at k4) and f32 Xd[n_in / 32][4];
 *   weights, per sub-panel of 16 rows: int8 P[n_in / 4][16][4] and f32 Pd[n_in / 32][16].
 * Rows are whole (no k-blocking): a 64-row panel of int8 is 64 * n_in bytes (192 KB at n_in 3072, in L2) and a
 * token tile 4 * n_in bytes (in L1).
 *
 * With AVX-512 VNNI (KVL_MM_VNNI512), vpdpbusd multiplies unsigned by signed bytes straight into int32, so the
 * activations are stored offset by 128 (q ^ 0x80 = q + 128 as u8) and the weights as they are; each block's sum
 * starts from -128 * (sum of the row's 32 weights), kept per sub-panel as int32 Pc[n_in / 32][16]. The integer
 * sums, and so the results, are the same as the AVX2 kernel's. */
#include <stdlib.h>

#include "compute/mm_internal.h"

#ifdef KVL_MM_AVX2

enum { MT = KVL_MM_Q8GEMM_GROUP, NR = 16, MC = KVL_MM_GEMM_ROWS };

static size_t tile_bytes(int64_t n_in) { return (size_t)n_in * MT + (size_t)n_in / 32 * MT * sizeof(float); }

size_t kvl_mm_q8gemm_xbytes(int64_t n_in, int n_tok) {
    return tile_bytes(n_in) * (size_t)((n_tok + MT - 1) / MT) + 32 * sizeof(float);
}

void kvl_mm_q8gemm_pack_x(void *Xbuf, const float *x, int64_t n_in, int n_tok, int g, void *tmp) {
    uint8_t *tile = (uint8_t *)Xbuf + tile_bytes(n_in) * g;
    int32_t *X = (int32_t *)tile;
    float *Xd = (float *)(tile + (size_t)n_in * MT);
    int8_t *q = tmp;
    float *d = (float *)((uint8_t *)tmp + n_in);
    for (int i = 0; i < MT; i++) {
        const int t = g * MT + i;
        if (t < n_tok) {
            kvl_mm_quantize_x(x + t * n_in, n_in, q, d);
        } else { /* padding token */
            memset(q, 0, (size_t)n_in);
            memset(d, 0, (size_t)n_in / 32 * sizeof(float));
        }
        for (int64_t k4 = 0; k4 < n_in / 4; k4++) {
            uint32_t v;
            memcpy(&v, q + 4 * k4, 4);
#ifdef KVL_MM_VNNI512
            v ^= 0x80808080u; /* + 128: unsigned operand of vpdpbusd */
#endif
            X[k4 * MT + i] = (int32_t)v;
        }
        for (int64_t b = 0; b < n_in / 32; b++) Xd[b * MT + i] = d[b];
    }
}

/* Scratch: P (MC * n_in), Pd and Pc (MC * n_in / 32 each), then pack_x's 5 * n_in + 64 at the tail. */
size_t kvl_mm_q8gemm_scratch_bytes(int64_t n_in) {
    return (size_t)MC * (size_t)n_in + (size_t)MC * (size_t)n_in / 32 * (sizeof(float) + sizeof(int32_t)) +
           (size_t)n_in * 5 + 64;
}

#ifdef KVL_MM_VNNI512
/* VNNI: C[mr][nr] for NP (1 or 2) sub-panels side by side (the second at P + NR * n_in, Pd/Pc + NR * nblk):
 * 4 x NP int32 and float accumulators. */
static inline __attribute__((always_inline)) void ukernel_vnni_np(int64_t nblk, const int32_t *X, const float *Xd,
                                                                  const int8_t *P, const float *Pd, const int32_t *Pc,
                                                                  float *C, int64_t ldc, int mr, int nr, const int NP) {
    const int64_t n_in = nblk * 32;
    __m512 f[MT][2];
#pragma GCC unroll 4
    for (int t = 0; t < MT; t++) f[t][0] = f[t][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nblk; b++) {
        __m512i s[MT][2];
#pragma GCC unroll 2
        for (int j = 0; j < NP; j++) {
            const __m512i c = _mm512_loadu_si512(Pc + j * NR * nblk + b * NR);
#pragma GCC unroll 4
            for (int t = 0; t < MT; t++) s[t][j] = c;
        }
#pragma GCC unroll 2
        for (int k4 = 0; k4 < 8; k4++) {
            __m512i w[2];
#pragma GCC unroll 2
            for (int j = 0; j < NP; j++) w[j] = _mm512_loadu_si512(P + j * NR * n_in + (b * 8 + k4) * NR * 4);
            const int32_t *xk = X + (b * 8 + k4) * MT;
#pragma GCC unroll 4
            for (int t = 0; t < MT; t++) {
                const __m512i xb = _mm512_set1_epi32(xk[t]);
#pragma GCC unroll 2
                for (int j = 0; j < NP; j++) s[t][j] = _mm512_dpbusd_epi32(s[t][j], xb, w[j]);
            }
        }
#pragma GCC unroll 2
        for (int j = 0; j < NP; j++) {
            const __m512 d = _mm512_loadu_ps(Pd + j * NR * nblk + b * NR);
#pragma GCC unroll 4
            for (int t = 0; t < MT; t++)
                f[t][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t][j]), _mm512_mul_ps(d, _mm512_set1_ps(Xd[b * MT + t])),
                                          f[t][j]);
        }
    }
#pragma GCC unroll 2
    for (int j = 0; j < NP; j++) {
        const int left = nr - NR * j; /* rows of sub-panel j that exist in W */
        const __mmask16 m = left >= NR ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 4
        for (int t = 0; t < MT; t++)
            if (t < mr) _mm512_mask_storeu_ps(C + t * ldc + NR * j, m, f[t][j]);
    }
}
#else

/* C[mr][nr] = sum over blocks of (dw * dx) * int dot; X/Xd one token tile, P/Pd one 16-row sub-panel. */
static void ukernel(int64_t nblk, const int32_t *X, const float *Xd, const int8_t *P, const float *Pd, float *C,
                    int64_t ldc, int mr, int nr) {
    __m256 f[MT][2];
#pragma GCC unroll 4
    for (int t = 0; t < MT; t++) f[t][0] = f[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nblk; b++) {
        __m256i s[MT][2];
#pragma GCC unroll 4
        for (int t = 0; t < MT; t++) s[t][0] = s[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int k4 = 0; k4 < 8; k4++) {
            const int8_t *pk = P + (b * 8 + k4) * NR * 4;
            const __m256i w0 = _mm256_load_si256((const __m256i *)pk);
            const __m256i w1 = _mm256_load_si256((const __m256i *)(pk + 32));
            const __m256i a0 = _mm256_abs_epi8(w0), a1 = _mm256_abs_epi8(w1);
            const int32_t *xk = X + (b * 8 + k4) * MT;
#pragma GCC unroll 4
            for (int t = 0; t < MT; t++) {
                const __m256i xb = _mm256_set1_epi32(xk[t]);
                /* |w| * (x * sign w): pairs <= 128 * 127 * 2, no int16 saturation */
                s[t][0] = kvl_mm_dot4(s[t][0], a0, _mm256_sign_epi8(xb, w0));
                s[t][1] = kvl_mm_dot4(s[t][1], a1, _mm256_sign_epi8(xb, w1));
            }
        }
        const __m256 d0 = _mm256_load_ps(Pd + b * NR), d1 = _mm256_load_ps(Pd + b * NR + 8);
#pragma GCC unroll 4
        for (int t = 0; t < MT; t++) {
            const __m256 dx = _mm256_set1_ps(Xd[b * MT + t]);
            f[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][0]), _mm256_mul_ps(d0, dx), f[t][0]);
            f[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][1]), _mm256_mul_ps(d1, dx), f[t][1]);
        }
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
#pragma GCC unroll 4
    for (int t = 0; t < MT; t++) {
        if (t >= mr) break;
        float *ct = C + t * ldc;
        if (nr == NR) {
            _mm256_storeu_ps(ct, f[t][0]);
            _mm256_storeu_ps(ct + 8, f[t][1]);
        } else { /* only nr outputs exist in the last rows of W */
            _mm256_maskstore_ps(ct, m0, f[t][0]);
            _mm256_maskstore_ps(ct + 8, m1, f[t][1]);
        }
    }
}

#endif

/* Copy rows [o0, o0 + mc) into sub-panels (missing rows of the last one are zero); with VNNI also each block's
 * -128 * sum of weights into Pc. */
static void pack_w(const kvl_weight *W, int64_t o0, int mc, int8_t *P, float *Pd, int32_t *Pc) {
#ifndef KVL_MM_VNNI512
    (void)Pc;
#endif
    const int64_t n_in = W->n_in, nblk = n_in / 32;
    const int np = (mc + NR - 1) / NR;
    for (int p = 0; p < np; p++) {
        int8_t *Pp = P + (int64_t)p * NR * n_in;
        float *Pdp = Pd + (int64_t)p * NR * nblk;
        for (int l = 0; l < NR; l++) {
            const int r = NR * p + l;
            if (r >= mc) {
                for (int64_t k4 = 0; k4 < n_in / 4; k4++) memset(Pp + (k4 * NR + l) * 4, 0, 4);
                for (int64_t b = 0; b < nblk; b++) Pdp[b * NR + l] = 0;
#ifdef KVL_MM_VNNI512
                for (int64_t b = 0; b < nblk; b++) Pc[(int64_t)p * NR * nblk + b * NR + l] = 0;
#endif
                continue;
            }
            const kvl_block_q8_0 *blk = (const kvl_block_q8_0 *)((const uint8_t *)W->data + (o0 + r) * W->row_bytes);
            for (int64_t b = 0; b < nblk; b++) {
                Pdp[b * NR + l] = kvl_mm_h2f(blk[b].d);
                for (int k4 = 0; k4 < 8; k4++) memcpy(Pp + ((b * 8 + k4) * NR + l) * 4, blk[b].qs + 4 * k4, 4);
#ifdef KVL_MM_VNNI512
                int32_t sum = 0;
                for (int i = 0; i < 32; i++) sum += blk[b].qs[i];
                Pc[(int64_t)p * NR * nblk + b * NR + l] = -128 * sum;
#endif
            }
        }
    }
}

void kvl_mm_q8gemm(float *y, const void *Xbuf, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1,
                   void *scratch) {
    const int64_t n_in = W->n_in, nblk = n_in / 32, n_out = W->n_out;
    const int n_groups = (n_tok + MT - 1) / MT;
    int8_t *P = scratch;
    float *Pd = (float *)((uint8_t *)scratch + (size_t)MC * n_in);
    int32_t *Pc = (int32_t *)(Pd + MC * nblk);
    for (int64_t o = o0; o < o1; o += MC) {
        const int mc = (int)(o1 - o < MC ? o1 - o : MC), np = (mc + NR - 1) / NR;
        pack_w(W, o, mc, P, Pd, Pc);
        for (int g = 0; g < n_groups; g++) {
            const uint8_t *tile = (const uint8_t *)Xbuf + tile_bytes(n_in) * g;
            const int32_t *X = (const int32_t *)tile;
            const float *Xd = (const float *)(tile + (size_t)n_in * MT);
            const int mr = n_tok - g * MT < MT ? n_tok - g * MT : MT;
#ifdef KVL_MM_VNNI512
            for (int p = 0; p < np; p += 2) { /* sub-panels in pairs: 8 accumulators hide vpdpbusd's latency */
                const int nr = mc - NR * p;
                const int64_t po = (int64_t)p * NR * nblk;
                if (p + 1 < np)
                    ukernel_vnni_np(nblk, X, Xd, P + po * 32, Pd + po, Pc + po, y + (int64_t)g * MT * n_out + o + NR * p,
                                    n_out, mr, nr, 2);
                else
                    ukernel_vnni_np(nblk, X, Xd, P + po * 32, Pd + po, Pc + po, y + (int64_t)g * MT * n_out + o + NR * p,
                                    n_out, mr, nr, 1);
            }
#else
            for (int p = 0; p < np; p++) {
                const int nr = mc - NR * p < NR ? mc - NR * p : NR;
                ukernel(nblk, X, Xd, P + (int64_t)p * NR * n_in, Pd + (int64_t)p * NR * nblk,
                        y + (int64_t)g * MT * n_out + o + NR * p, n_out, mr, nr);
            }
#endif
        }
    }
}

#endif
