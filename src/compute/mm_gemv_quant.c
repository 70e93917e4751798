/* Row-streaming matmul for Q8_0 / Q4_K / Q6_K weights against activations quantized to int8 per 32 values.
 *
 * Integer products are exact; the only added error is the activation rounding, |x - d q| <= d/2 with
 * d = max|x_block| / 127, so |y - y_exact| <= sum over blocks b of (d_b / 2) * sum_{i in b} |w_i| (plus f32
 * rounding of the per-block sums); test_matmul checks exactly this bound. Measured on Gaussian activations with
 * 1% outliers (x20): ~0.8% rms relative error of y (Q8_0), the same order as the rounding of the Q8_0 weights
 * themselves (also 1/127 of the block maximum); llama.cpp's quantized-activation path has the same error.
 *
 * AVX2 products: maddubs multiplies unsigned by signed bytes and adds pairs into int16 with saturation. Q8_0
 * weights use |w| against sign(w) * x: |w| <= 128 and |x| <= 127 give pair sums <= 32512, no saturation (also
 * for w = -128). Q4_K (0..15) and Q6_K (0..63) quants are unsigned already. */
#include <math.h>

#include "compute/mm_internal.h"

#define INLINE static inline __attribute__((always_inline))

static size_t align32(size_t n) { return (n + 31) & ~(size_t)31; }

size_t kvl_mm_qx_bytes(int64_t n_in, int n_tok) {
    return (size_t)n_tok * (align32((size_t)n_in) + 2 * align32((size_t)n_in / 32 * sizeof(float)) +
                            2 * align32((size_t)n_in / 16 * sizeof(int32_t)));
}

void kvl_mm_quantize_x(const float *x, int64_t n, int8_t *qout, float *dout) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        int8_t *q = qout + 32 * b;
        float amax = 0;
#ifdef KVL_MM_AVX2
        const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 32; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(absmask, _mm256_loadu_ps(xb + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        amax = _mm_cvtss_f32(m4);
#else
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
#endif
        const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        dout[b] = d;
#ifdef KVL_MM_AVX2
        const __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb), vid));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 8), vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 16), vid));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 24), vid));
        /* packs interleave 128-bit lanes; the permute restores element order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)q, p);
#else
        for (int j = 0; j < 32; j++) q[j] = (int8_t)lrintf(xb[j] * id);
#endif
    }
}

static void quantize_token(kvl_mm_qx *qx, const float *x, int64_t n_in, int sums) {
    kvl_mm_quantize_x(x, n_in, qx->q, qx->d);
    if (!sums) return;
    for (int64_t j = 0; j < n_in / 16; j++) {
        int32_t s = 0;
        for (int i = 0; i < 16; i++) s += qx->q[16 * j + i];
        qx->s16[j] = s;
        qx->ds16[j] = qx->d[j / 2] * (float)s;
    }
    for (int64_t b = 0; b < n_in / 32; b++) qx->ds32[b] = qx->ds16[2 * b] + qx->ds16[2 * b + 1];
}

void kvl_mm_qx_init(kvl_mm_qx *qx, void *buf, const float *x, int64_t n_in, int n_tok, int sums) {
    uint8_t *p = buf;
    for (int t = 0; t < n_tok; t++) {
        qx[t].q = (int8_t *)p;
        p += align32((size_t)n_in);
    }
    for (int t = 0; t < n_tok; t++) {
        qx[t].d = (float *)p;
        p += align32((size_t)n_in / 32 * sizeof(float));
    }
    for (int t = 0; t < n_tok; t++) {
        qx[t].s16 = (int32_t *)p;
        p += align32((size_t)n_in / 16 * sizeof(int32_t));
    }
    for (int t = 0; t < n_tok; t++) {
        qx[t].ds16 = (float *)p;
        p += align32((size_t)n_in / 16 * sizeof(float));
    }
    for (int t = 0; t < n_tok; t++) {
        qx[t].ds32 = (float *)p;
        p += align32((size_t)n_in / 32 * sizeof(float));
    }
    for (int t = 0; t < n_tok; t++) quantize_token(&qx[t], x + t * n_in, n_in, sums);
}

#ifdef KVL_MM_AVX2
INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 int32 sums of u8 * s8 products over 32 bytes, pairs reduced by maddubs then by madd with `pairs` (Q6_K's
 * sub-block scales; the other types use kvl_mm_dot4). */
INLINE __m256i dot32(__m256i u, __m256i s, __m256i pairs) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), pairs);
}
#endif

#ifndef KVL_Q8_STREAMS
#define KVL_Q8_STREAMS 2
#endif
#ifndef KVL_Q8_PREFETCH
#define KVL_Q8_PREFETCH 1024
#endif
/* ---- Q8_0: R rows (stride rb bytes) at once share the activation loads ---- */
INLINE void dot_q8_0(int R, int NT, const uint8_t *row, size_t rb, int64_t nb, const kvl_mm_qx *qx,
                     float out[][KVL_MM_GEMV_MAX_TOK]) {
#ifdef KVL_MM_AVX2
    /* blocks alternate between two accumulator sets: one FMA chain would cap a row at 34 bytes per FMA latency */
    __m256 acc[2][4][KVL_MM_GEMV_MAX_TOK];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[0][r][t] = acc[1][r][t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        /* one stream per row: prefetch well ahead so the memory system keeps several lines in flight */
        for (int r = 0; r < R; r++) _mm_prefetch((const char *)((const kvl_block_q8_0 *)(row + r * rb) + b) + KVL_Q8_PREFETCH, _MM_HINT_T0);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                const kvl_block_q8_0 *w = (const kvl_block_q8_0 *)(row + r * rb) + b + h;
                const __m256i wv = _mm256_loadu_si256((const __m256i *)w->qs);
                const __m256i u = _mm256_abs_epi8(wv);
                const float dw = kvl_mm_h2f(w->d);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const __m256i xv = _mm256_load_si256((const __m256i *)(qx[t].q + 32 * (b + h)));
                    const __m256 p = _mm256_cvtepi32_ps(kvl_mm_dot4(_mm256_setzero_si256(), u, _mm256_sign_epi8(xv, wv)));
                    acc[h][r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * qx[t].d[b + h]), acc[h][r][t]);
                }
            }
    }
    for (; b < nb; b++)
        for (int r = 0; r < R; r++) {
            const kvl_block_q8_0 *w = (const kvl_block_q8_0 *)(row + r * rb) + b;
            const __m256i wv = _mm256_loadu_si256((const __m256i *)w->qs);
            const __m256i u = _mm256_abs_epi8(wv);
            const float dw = kvl_mm_h2f(w->d);
            for (int t = 0; t < NT; t++) {
                const __m256i xv = _mm256_load_si256((const __m256i *)(qx[t].q + 32 * b));
                const __m256 p = _mm256_cvtepi32_ps(kvl_mm_dot4(_mm256_setzero_si256(), u, _mm256_sign_epi8(xv, wv)));
                acc[0][r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * qx[t].d[b]), acc[0][r][t]);
            }
        }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) out[r][t] = hsum(_mm256_add_ps(acc[0][r][t], acc[1][r][t]));
#else
    for (int r = 0; r < R; r++) {
        const kvl_block_q8_0 *w = (const kvl_block_q8_0 *)(row + r * rb);
        for (int t = 0; t < NT; t++) {
            float s = 0;
            for (int64_t b = 0; b < nb; b++) {
                int32_t is = 0;
                for (int j = 0; j < 32; j++) is += w[b].qs[j] * qx[t].q[32 * b + j];
                s += (float)is * kvl_mm_h2f(w[b].d) * qx[t].d[b];
            }
            out[r][t] = s;
        }
    }
#endif
}

#ifdef KVL_MM_AVX2
/* Prefetch the cache lines of a block KVL_Q8_PREFETCH bytes ahead (a K-quant super-block spans 3-4 lines). */
INLINE void prefetch_ahead(const void *blk, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)blk + KVL_Q8_PREFETCH + o, _MM_HINT_T0);
}
#endif

/* ---- Q4_K: w = d*sc*q - dmin*m per sub-block of 32; the min term uses the int sums of the quantized x. ----
 * The eight 6-bit scales and mins of a super-block are unpacked together (scales[0..3] hold sc 0-3 in bits 0-5,
 * scales[4..7] m 0-3; scales[8..11] the low 4 bits of sc/m 4-7, whose top 2 bits are bits 6-7 of bytes 0-7),
 * turned into floats, and multiplied by the eight block scales of x in one vector; the min term is one FMA of
 * the mins against ds32 per super-block. */
#ifdef KVL_MM_AVX2
INLINE void q4k_scales(const uint8_t *s, float dall, float dmin, __m256 *sc, __m256 *mn) {
    uint32_t u[3];
    memcpy(u, s, 12);
    const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4;
    const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;
    const __m128i scb = _mm_cvtsi64_si128((long long)(sc_lo | (uint64_t)sc_hi << 32));
    const __m128i mb = _mm_cvtsi64_si128((long long)(m_lo | (uint64_t)m_hi << 32));
    *sc = _mm256_mul_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(scb)));
    *mn = _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mb)));
}
#endif

INLINE void dot_q4_K(int NT, const kvl_block_q4_K *w, int64_t nb, const kvl_mm_qx *qx, float *out) {
#ifdef KVL_MM_AVX2
    /* 4 accumulator chains for one token (the FMA latency would otherwise bound a row), 2 for more */
    enum { CH = 4 };
    const int nch = NT == 1 ? 4 : 2;
    __m256 acc[KVL_MM_GEMV_MAX_TOK][CH], accm[KVL_MM_GEMV_MAX_TOK];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        accm[t] = _mm256_setzero_ps();
        for (int c = 0; c < CH; c++) acc[t][c] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < nb; k++) {
        prefetch_ahead(w + k, sizeof *w); /* keep the stream ahead as for Q8_0 */
        __m256 sc, mn;
        q4k_scales(w[k].scales, kvl_mm_h2f(w[k].d), kvl_mm_h2f(w[k].dmin), &sc, &mn);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            float mul[8] __attribute__((aligned(32)));
            _mm256_store_ps(mul, _mm256_mul_ps(sc, _mm256_loadu_ps(qx[t].d + 8 * k)));
            accm[t] = _mm256_fmadd_ps(mn, _mm256_loadu_ps(qx[t].ds32 + 8 * k), accm[t]);
            const int8_t *xq = qx[t].q + 256 * k;
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                /* nibbles split per token: cheaper than keeping 8 vectors live (they spill) */
                const __m256i qv = _mm256_loadu_si256((const __m256i *)(w[k].qs + 32 * c));
                const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                const __m256i x0 = _mm256_load_si256((const __m256i *)(xq + 64 * c));
                const __m256i x1 = _mm256_load_si256((const __m256i *)(xq + 64 * c + 32));
                const __m256 p0 = _mm256_cvtepi32_ps(kvl_mm_dot4(_mm256_setzero_si256(), lo, x0));
                const __m256 p1 = _mm256_cvtepi32_ps(kvl_mm_dot4(_mm256_setzero_si256(), hi, x1));
                __m256 *a0 = &acc[t][(2 * c) % nch], *a1 = &acc[t][(2 * c + 1) % nch];
                *a0 = _mm256_fmadd_ps(p0, _mm256_broadcast_ss(mul + 2 * c), *a0);
                *a1 = _mm256_fmadd_ps(p1, _mm256_broadcast_ss(mul + 2 * c + 1), *a1);
            }
        }
    }
    for (int t = 0; t < NT; t++)
        out[t] = hsum(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]))) -
                 hsum(accm[t]);
#else
    float mins[KVL_MM_GEMV_MAX_TOK] = {0};
    for (int64_t k = 0; k < nb; k++) {
        const float dall = kvl_mm_h2f(w[k].d), dmin = kvl_mm_h2f(w[k].dmin);
        for (int c = 0; c < 4; c++) {
            int sc0, m0, sc1, m1;
            kvl_mm_q4k_scale_min(w[k].scales, 2 * c, &sc0, &m0);
            kvl_mm_q4k_scale_min(w[k].scales, 2 * c + 1, &sc1, &m1);
            const int64_t b0 = 8 * k + 2 * c, b1 = b0 + 1; /* 32-blocks of x */
            const uint8_t *q = w[k].qs + 32 * c;
            for (int t = 0; t < NT; t++) {
                int32_t s0 = 0, s1 = 0;
                for (int j = 0; j < 32; j++) {
                    s0 += (q[j] & 0x0f) * qx[t].q[32 * b0 + j];
                    s1 += (q[j] >> 4) * qx[t].q[32 * b1 + j];
                }
                mins[t] -= dall * sc0 * qx[t].d[b0] * (float)s0 + dall * sc1 * qx[t].d[b1] * (float)s1;
                mins[t] += dmin * (m0 * qx[t].ds32[b0] + m1 * qx[t].ds32[b1]);
            }
        }
    }
    for (int t = 0; t < NT; t++) out[t] = -mins[t];
#endif
}

/* ---- Q6_K: w = d*sc*(q - 32) per sub-block of 16; the -32 term uses the int sums of the quantized x. ----
 * The 6-bit quants are rebuilt from ql (low 4 bits) and qh (top 2) per 128 values; the sub-block scales enter the
 * integer sums through madd; the offset term is two FMAs of the scales against ds16 per super-block. */
INLINE void dot_q6_K(int NT, const kvl_block_q6_K *w, int64_t nb, const kvl_mm_qx *qx, float *out) {
#ifdef KVL_MM_AVX2
    enum { CH = 4 };
    const int nch = NT == 1 ? 4 : 2;
    __m256 acc[KVL_MM_GEMV_MAX_TOK][CH], acco[KVL_MM_GEMV_MAX_TOK];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        acco[t] = _mm256_setzero_ps();
        for (int c = 0; c < CH; c++) acc[t][c] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < nb; k++) {
        prefetch_ahead(w + k, sizeof *w);
        const float d = kvl_mm_h2f(w[k].d);
        const int8_t *sc = w[k].scales;
        const __m128i s16 = _mm_loadu_si128((const __m128i *)sc);
        const __m256 d32 = _mm256_set1_ps(32.0f * d);
        const __m256 so0 = _mm256_mul_ps(d32, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s16)));
        const __m256 so1 = _mm256_mul_ps(d32, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(s16, 8))));
        /* the 16 scales as int16, each half (8 scales) in both 128-bit lanes: one byte shuffle per chunk then gives
         * madd's multipliers (scale j in the low lane, j + 1 in the high one) */
        const __m256i s16w = _mm256_cvtepi8_epi16(s16);
        const __m256i shalf[2] = {_mm256_permute2x128_si256(s16w, s16w, 0x00), _mm256_permute2x128_si256(s16w, s16w, 0x11)};
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            float mul[8] __attribute__((aligned(32)));
            _mm256_store_ps(mul, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_loadu_ps(qx[t].d + 8 * k)));
            acco[t] = _mm256_fmadd_ps(so0, _mm256_loadu_ps(qx[t].ds16 + 16 * k), acco[t]);
            acco[t] = _mm256_fmadd_ps(so1, _mm256_loadu_ps(qx[t].ds16 + 16 * k + 8), acco[t]);
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = w[k].ql + 64 * h, *qh = w[k].qh + 32 * h;
                __m256i q[4];
                kvl_mm_q6k_unpack128(ql, qh, q);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    const int bb = 4 * h + c; /* 32-block within the super-block */
                    /* sub-blocks j = 8h + 2c (values 0..15 of the chunk) and j + 1 (16..31): the bytes of int16
                     * element 2c of the half (low lane) and 2c + 1 (high lane), repeated */
                    const __m256i pick = _mm256_setr_epi8(
                        4 * c, 4 * c + 1, 4 * c, 4 * c + 1, 4 * c, 4 * c + 1, 4 * c, 4 * c + 1, 4 * c, 4 * c + 1, 4 * c,
                        4 * c + 1, 4 * c, 4 * c + 1, 4 * c, 4 * c + 1, 4 * c + 2, 4 * c + 3, 4 * c + 2, 4 * c + 3, 4 * c + 2,
                        4 * c + 3, 4 * c + 2, 4 * c + 3, 4 * c + 2, 4 * c + 3, 4 * c + 2, 4 * c + 3, 4 * c + 2, 4 * c + 3,
                        4 * c + 2, 4 * c + 3);
                    const __m256i sv = _mm256_shuffle_epi8(shalf[h], pick);
                    const __m256i xv = _mm256_load_si256((const __m256i *)(qx[t].q + 256 * k + 32 * bb));
                    const __m256 p = _mm256_cvtepi32_ps(dot32(q[c], xv, sv));
                    __m256 *a = &acc[t][bb % nch];
                    *a = _mm256_fmadd_ps(p, _mm256_broadcast_ss(mul + bb), *a);
                }
            }
        }
    }
    for (int t = 0; t < NT; t++)
        out[t] = hsum(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]))) -
                 hsum(acco[t]);
#else
    float offs[KVL_MM_GEMV_MAX_TOK] = {0};
    for (int64_t k = 0; k < nb; k++) {
        const float d = kvl_mm_h2f(w[k].d);
        const int8_t *sc = w[k].scales;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[k].ql + 64 * h, *qh = w[k].qh + 32 * h;
            for (int c = 0; c < 4; c++) {
                const int j = 8 * h + 2 * c;
                const int64_t b = 8 * k + 4 * h + c;
                for (int t = 0; t < NT; t++) {
                    int32_t s = 0;
                    for (int l = 0; l < 32; l++) {
                        const int lo = c < 2 ? ql[32 * c + l] & 0x0f : ql[32 * (c - 2) + l] >> 4;
                        const int v = lo | (((qh[l] >> (2 * c)) & 3) << 4);
                        s += sc[j + l / 16] * v * qx[t].q[32 * b + l];
                    }
                    offs[t] -= d * qx[t].d[b] * (float)s;
                    offs[t] += 32.0f * d * (sc[j] * qx[t].ds16[2 * b] + sc[j + 1] * qx[t].ds16[2 * b + 1]);
                }
            }
        }
    }
    for (int t = 0; t < NT; t++) out[t] = -offs[t];
#endif
}

/* ---- Q4_0 / Q4_1 / Q5_0 / Q5_1: x = d * q + m per block of 32, q unsigned (0..31), so maddubs takes the codes as
 * they are (2 * 31 * 127 < 32768) and the offset term is m times the block's x sum (ds32). ---- */
#ifdef KVL_MM_AVX2
/* The 32 codes of a block: nibbles of qs (value j low, j + 16 high) with, for Q5, bit j of qh as 0x10. */
INLINE __m256i legacy_codes(const uint8_t *qs, const uint8_t *qh) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0f);
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
    if (qh) {
        uint32_t h;
        memcpy(&h, qh, 4);
        /* byte j gets byte j / 8 of h, then its bit j % 8 is tested */
        const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                             3, 3, 3, 3, 3, 3, 3);
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
        const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), sel), bit);
        q = _mm256_or_si256(q, _mm256_and_si256(_mm256_cmpeq_epi8(b, bit), _mm256_set1_epi8(0x10)));
    }
    return q;
}
#endif

INLINE void dot_legacy(int type, int NT, const uint8_t *row, int64_t nb, const kvl_mm_qx *qx, float *out) {
    const size_t bytes = kvl_type_block_bytes(type);
    const kvl_legacy_layout l = kvl_legacy_layout_of(type);
    float offs[KVL_MM_GEMV_MAX_TOK] = {0};
#ifdef KVL_MM_AVX2
    __m256 acc[KVL_MM_GEMV_MAX_TOK][2];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bytes;
        uint16_t hd, hm = 0;
        memcpy(&hd, blk, 2);
        if (l.m_at >= 0) memcpy(&hm, blk + l.m_at, 2);
        const float d = kvl_mm_h2f(hd), m = l.m_at >= 0 ? kvl_mm_h2f(hm) : -(float)l.centre * d;
        const __m256i q = legacy_codes(blk + l.qs_at, l.qh_at >= 0 ? blk + l.qh_at : NULL);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256i xv = _mm256_load_si256((const __m256i *)(qx[t].q + 32 * b));
            const __m256 p = _mm256_cvtepi32_ps(kvl_mm_dot4(_mm256_setzero_si256(), q, xv));
            acc[t][b & 1] = _mm256_fmadd_ps(p, _mm256_set1_ps(d * qx[t].d[b]), acc[t][b & 1]);
            offs[t] += m * qx[t].ds32[b];
        }
    }
    for (int t = 0; t < NT; t++) out[t] = hsum(_mm256_add_ps(acc[t][0], acc[t][1])) + offs[t];
#else
    float s[KVL_MM_GEMV_MAX_TOK] = {0};
    for (int64_t b = 0; b < nb; b++) {
        uint8_t q[32];
        float d, m;
        kvl_legacy_codes(type, row + b * bytes, q, &d, &m);
        for (int t = 0; t < NT; t++) {
            int32_t is = 0;
            for (int j = 0; j < 32; j++) is += q[j] * qx[t].q[32 * b + j];
            s[t] += d * qx[t].d[b] * (float)is;
            offs[t] += m * qx[t].ds32[b];
        }
    }
    for (int t = 0; t < NT; t++) out[t] = s[t] + offs[t];
    (void)l;
#endif
}

INLINE void rows_type(int type, float *y, const kvl_mm_qx *qx, const kvl_weight *W, int n_tok, int64_t o0,
                      int64_t o1) {
    const size_t rb = W->row_bytes;
    float out[4][KVL_MM_GEMV_MAX_TOK];
    for (int64_t o = o0; o < o1;) {
        const uint8_t *row = (const uint8_t *)W->data + o * rb;
        int R = 1;
        if (type == KVL_TYPE_Q8_0 && n_tok == 1 && KVL_Q8_STREAMS > 1 && (o1 - o0) % KVL_Q8_STREAMS == 0 && o == o0) {
            /* decode: KVL_Q8_STREAMS rows from separate parts of the range at once, so the memory system
             * fetches several sequential streams */
            const int64_t nb = W->n_in / 32, part = (o1 - o0) / KVL_Q8_STREAMS;
            for (int64_t i = 0; i < part; i++) {
                dot_q8_0(KVL_Q8_STREAMS, 1, row + i * rb, rb * part, nb, qx, out);
                for (int r = 0; r < KVL_Q8_STREAMS; r++) y[o0 + i + r * part] = out[r][0];
            }
            break;
        }
        if (type == KVL_TYPE_Q8_0) {
            const int64_t nb = W->n_in / 32;
            R = n_tok > 1 && o + 2 <= o1 ? 2 : 1; /* one sequential stream per thread measured fastest */
            if (n_tok == 1) dot_q8_0(1, 1, row, rb, nb, qx, out);
            else if (n_tok == 2 && R == 2) dot_q8_0(2, 2, row, rb, nb, qx, out);
            else if (n_tok == 2) dot_q8_0(1, 2, row, rb, nb, qx, out);
            else if (R == 2) dot_q8_0(2, 3, row, rb, nb, qx, out);
            else dot_q8_0(1, 3, row, rb, nb, qx, out);
        } else if (kvl_type_is_legacy(type)) {
            if (n_tok == 1) dot_legacy(type, 1, row, W->n_in / 32, qx, out[0]);
            else if (n_tok == 2) dot_legacy(type, 2, row, W->n_in / 32, qx, out[0]);
            else dot_legacy(type, 3, row, W->n_in / 32, qx, out[0]);
        } else {
            const int64_t nb = W->n_in / 256;
#define KDOT(NT) (type == KVL_TYPE_Q4_K ? dot_q4_K(NT, (const void *)row, nb, qx, out[0]) \
                                        : dot_q6_K(NT, (const void *)row, nb, qx, out[0]))
            if (n_tok == 1) KDOT(1);
            else if (n_tok == 2) KDOT(2);
            else KDOT(3);
#undef KDOT
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < n_tok; t++) y[t * W->n_out + o + r] = out[r][t];
        o += R;
    }
}

void kvl_mm_gemv_quant(float *y, const kvl_mm_qx *qx, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1) {
    switch (W->type) {
    case KVL_TYPE_Q8_0: rows_type(KVL_TYPE_Q8_0, y, qx, W, n_tok, o0, o1); break;
    case KVL_TYPE_Q4_K: rows_type(KVL_TYPE_Q4_K, y, qx, W, n_tok, o0, o1); break;
    case KVL_TYPE_Q4_0: rows_type(KVL_TYPE_Q4_0, y, qx, W, n_tok, o0, o1); break;
    case KVL_TYPE_Q4_1: rows_type(KVL_TYPE_Q4_1, y, qx, W, n_tok, o0, o1); break;
    case KVL_TYPE_Q5_0: rows_type(KVL_TYPE_Q5_0, y, qx, W, n_tok, o0, o1); break;
    case KVL_TYPE_Q5_1: rows_type(KVL_TYPE_Q5_1, y, qx, W, n_tok, o0, o1); break;
    default: rows_type(KVL_TYPE_Q6_K, y, qx, W, n_tok, o0, o1); break;
    }
}
