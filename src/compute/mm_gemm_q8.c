/* Q8_0 prefill GEMM in integer arithmetic (AVX2 only): activations quantized to int8 per 32 values as in the
 * decode path (same error bound, see mm_gemv_quant.c), both operands widened to int16 for vpmaddwd.
 *
 * Why int16 and not the int8 maddubs route: on Zen 3 vpsignb, vpmaddubsw and vpmaddwd all issue on the same two
 * pipes (measured: any pair of them together runs at 2 per cycle). int8 needs sign + maddubs + madd = 3 of those
 * per 32 multiply-adds (21 per cycle); int16 needs one madd per 16 (32 per cycle) with the int32 adds on the other
 * pipes. The f32 FMA route gives 16. The integer results are the same exact dot products as int8 would give.
 *
 * Layouts (pairs of k, so a 32-bit lane holds the two int16 that one madd reduces):
 *   activations, per tile of MT tokens: int32 X[n_in / 2][MT] (x[2j], x[2j+1] of token t) and f32 Xd[n_in / 32][MT];
 *   weights, per sub-panel of NR rows: int16 P[n_in / 2][NR][2] and f32 Pd[n_in / 32][NR].
 * The k axis is cut into chunks of KC so a chunk of the whole panel (MC x KC int16, 32 KB) stays in L1/L2 while
 * every token tile passes over it; partial sums go to y between chunks. */
#include <stdlib.h>

#include "compute/mm_internal.h"

#ifdef KVL_MM_AVX2

enum { MT = KVL_MM_Q8GEMM_GROUP, NR = 16, MC = KVL_MM_GEMM_ROWS, KC = 256 };

static size_t tile_bytes(int64_t n_in) { return (size_t)n_in / 2 * MT * 4 + (size_t)n_in / 32 * MT * sizeof(float); }

size_t kvl_mm_q8gemm_xbytes(int64_t n_in, int n_tok) {
    return tile_bytes(n_in) * (size_t)((n_tok + MT - 1) / MT) + 32 * sizeof(float);
}

void kvl_mm_q8gemm_pack_x(void *Xbuf, const float *x, int64_t n_in, int n_tok, int g, void *tmp) {
    uint8_t *tile = (uint8_t *)Xbuf + tile_bytes(n_in) * g;
    uint32_t *X = (uint32_t *)tile;
    float *Xd = (float *)(tile + (size_t)n_in / 2 * MT * 4);
    int8_t *q = tmp;
    float *d = (float *)((uint8_t *)tmp + n_in);
    for (int i = 0; i < MT; i++) {
        const int t = g * MT + i;
        if (t < n_tok) {
            kvl_mm_quantize_x(x + (size_t)t * n_in, n_in, q, d);
        } else { /* padding token */
            memset(q, 0, (size_t)n_in);
            memset(d, 0, (size_t)n_in / 32 * sizeof(float));
        }
        for (int64_t j = 0; j < n_in / 2; j++)
            X[j * MT + i] = (uint16_t)(int16_t)q[2 * j] | (uint32_t)(uint16_t)(int16_t)q[2 * j + 1] << 16;
        for (int64_t b = 0; b < n_in / 32; b++) Xd[b * MT + i] = d[b];
    }
}

size_t kvl_mm_q8gemm_scratch_bytes(int64_t n_in) {
    return (size_t)MC * (size_t)n_in * 2 + (size_t)MC * (size_t)n_in / 32 * sizeof(float) + (size_t)n_in * 5 + 64;
}

/* C[mr][nr] (+)= sum over nblk blocks of (dw * dx) * int dot; X/Xd one token tile, P/Pd one sub-panel, all at the
 * chunk's first block. */
static void ukernel(int nblk, const int32_t *X, const float *Xd, const int16_t *P, const float *Pd, float *C,
                    int64_t ldc, int mr, int nr, int accumulate) {
    __m256 f[MT][2];
#pragma GCC unroll 4
    for (int t = 0; t < MT; t++) f[t][0] = f[t][1] = _mm256_setzero_ps();
    for (int b = 0; b < nblk; b++) {
        __m256i s[MT][2];
#pragma GCC unroll 4
        for (int t = 0; t < MT; t++) s[t][0] = s[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int k2 = 0; k2 < 16; k2++) {
            const int16_t *pk = P + (size_t)(b * 16 + k2) * NR * 2;
            const __m256i w0 = _mm256_load_si256((const __m256i *)pk);
            const __m256i w1 = _mm256_load_si256((const __m256i *)(pk + 16));
            const int32_t *xk = X + (size_t)(b * 16 + k2) * MT;
#pragma GCC unroll 4
            for (int t = 0; t < MT; t++) {
                const __m256i xb = _mm256_set1_epi32(xk[t]);
                s[t][0] = _mm256_add_epi32(s[t][0], _mm256_madd_epi16(w0, xb));
                s[t][1] = _mm256_add_epi32(s[t][1], _mm256_madd_epi16(w1, xb));
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
            if (accumulate) {
                f[t][0] = _mm256_add_ps(f[t][0], _mm256_loadu_ps(ct));
                f[t][1] = _mm256_add_ps(f[t][1], _mm256_loadu_ps(ct + 8));
            }
            _mm256_storeu_ps(ct, f[t][0]);
            _mm256_storeu_ps(ct + 8, f[t][1]);
        } else { /* only nr outputs exist in the last rows of W */
            if (accumulate) {
                f[t][0] = _mm256_add_ps(f[t][0], _mm256_maskload_ps(ct, m0));
                f[t][1] = _mm256_add_ps(f[t][1], _mm256_maskload_ps(ct + 8, m1));
            }
            _mm256_maskstore_ps(ct, m0, f[t][0]);
            _mm256_maskstore_ps(ct + 8, m1, f[t][1]);
        }
    }
}

/* Transpose 8 rows of 8 int32 in place (r[i] lane j <-> r[j] lane i). */
static void transpose8(__m256i r[8]) {
    __m256i a[8], b[8];
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        a[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
        r[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
    }
}

/* Copy rows [o0, o0 + mc) into sub-panels as int16 (missing rows of the last one are zero). Each block of 8 rows
 * is widened to int16 and transposed so one 32-bit lane holds a row's pair of k. */
static void pack_w(const kvl_weight *W, int64_t o0, int mc, int16_t *P, float *Pd) {
    const int64_t n_in = W->n_in, nblk = n_in / 32;
    const int np = (mc + NR - 1) / NR;
    static const int8_t zero[32];
    for (int p = 0; p < np; p++) {
        int16_t *Pp = P + (int64_t)p * NR * n_in;
        float *Pdp = Pd + (int64_t)p * NR * nblk;
        for (int h = 0; h < NR / 8; h++) {
            const kvl_block_q8_0 *rows[8];
            for (int i = 0; i < 8; i++) {
                const int r = NR * p + 8 * h + i;
                rows[i] = r < mc ? (const kvl_block_q8_0 *)((const uint8_t *)W->data + (o0 + r) * W->row_bytes) : NULL;
            }
            for (int64_t b = 0; b < nblk; b++) {
                __m256i lo[8], hi[8];
                for (int i = 0; i < 8; i++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(rows[i] ? rows[i][b].qs : zero));
                    lo[i] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q));
                    hi[i] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1));
                    Pdp[b * NR + 8 * h + i] = rows[i] ? kvl_mm_h2f(rows[i][b].d) : 0.0f;
                }
                transpose8(lo);
                transpose8(hi);
                for (int j = 0; j < 8; j++) {
                    _mm256_store_si256((__m256i *)(Pp + ((b * 16 + j) * NR + 8 * h) * 2), lo[j]);
                    _mm256_store_si256((__m256i *)(Pp + ((b * 16 + 8 + j) * NR + 8 * h) * 2), hi[j]);
                }
            }
        }
    }
}

void kvl_mm_q8gemm(float *y, const void *Xbuf, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1,
                   void *scratch) {
    const int64_t n_in = W->n_in, nblk = n_in / 32, n_out = W->n_out;
    const int n_groups = (n_tok + MT - 1) / MT;
    const size_t xoff = (size_t)n_in / 2 * MT; /* int32 offset of Xd in a tile */
    int16_t *P = scratch;
    float *Pd = (float *)((uint8_t *)scratch + (size_t)MC * n_in * 2);
    for (int64_t o = o0; o < o1; o += MC) {
        const int mc = (int)(o1 - o < MC ? o1 - o : MC), np = (mc + NR - 1) / NR;
        pack_w(W, o, mc, P, Pd);
        for (int64_t b0 = 0; b0 < nblk; b0 += KC / 32) {
            const int nb = (int)(nblk - b0 < KC / 32 ? nblk - b0 : KC / 32);
            for (int g = 0; g < n_groups; g++) {
                const int32_t *X = (const int32_t *)((const uint8_t *)Xbuf + tile_bytes(n_in) * g);
                const float *Xd = (const float *)(X + xoff);
                const int mr = n_tok - g * MT < MT ? n_tok - g * MT : MT;
                for (int p = 0; p < np; p++) {
                    const int nr = mc - NR * p < NR ? mc - NR * p : NR;
                    ukernel(nb, X + b0 * 16 * MT, Xd + b0 * MT, P + (int64_t)p * NR * n_in + b0 * 32 * NR,
                            Pd + (int64_t)p * NR * nblk + b0 * NR, y + (int64_t)g * MT * n_out + o + NR * p, n_out,
                            mr, nr, b0 > 0);
                }
            }
        }
    }
}

#endif
