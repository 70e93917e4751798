/* Row-streaming matmul for F32 / F16 / BF16 weights with f32 activations and f32 accumulation (the float
 * types must match transformers to 1e-4, so no activation quantization here). Each row is read once and
 * dotted with up to KVL_MM_GEMV_MAX_TOK tokens while in registers. */
#include "compute/mm_internal.h"

#define INLINE static inline __attribute__((always_inline))

#ifndef KVL_F_STREAMS
#define KVL_F_STREAMS 2
#endif
#ifndef KVL_F_PREFETCH
#define KVL_F_PREFETCH 1024
#endif

#ifdef KVL_MM_AVX2
void kvl_mm_bf16_order(float *xp, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(xp + i, x + i, 4 * sizeof(float));
        memcpy(xp + i + 4, x + i + 8, 4 * sizeof(float));
        memcpy(xp + i + 8, x + i + 4, 4 * sizeof(float));
        memcpy(xp + i + 12, x + i + 12, 4 * sizeof(float));
    }
    memcpy(xp + i, x + i, (size_t)(n - i) * sizeof(float));
}

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* out[r][t] = row r . x[t] for R rows (stride rb bytes) and NT tokens; two accumulators per pair hide the FMA
 * latency. */
INLINE void dot_rows(int type, int R, int NT, const uint8_t *row, size_t rb, const float *x, int64_t n,
                     float out[][KVL_MM_GEMV_MAX_TOK]) {
    int64_t i = 0;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) out[r][t] = 0;
#ifdef KVL_MM_AVX2
    __m256 acc[4][KVL_MM_GEMV_MAX_TOK], acc2[4][KVL_MM_GEMV_MAX_TOK];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = acc2[r][t] = _mm256_setzero_ps();
    const int esz = type == KVL_TYPE_F32 ? 4 : 2;
    for (; i + 16 <= n; i += 16) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            /* prefetch the row stream well ahead (as for Q8_0: the hardware prefetcher alone keeps too few lines
             * in flight for one stream per core) */
            if ((i * esz) % 64 == 0) _mm_prefetch((const char *)(row + r * rb + i * esz) + KVL_F_PREFETCH, _MM_HINT_T0);
            __m256 w0, w1;
            if (type == KVL_TYPE_BF16) { /* x is in kvl_mm_bf16_order: interleaving zeros makes the f32 values */
                const __m256i v = _mm256_loadu_si256((const __m256i *)((const uint16_t *)(row + r * rb) + i));
                w0 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(_mm256_setzero_si256(), v));
                w1 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(_mm256_setzero_si256(), v));
            } else {
                w0 = kvl_mm_load8(type, row + r * rb, i);
                w1 = kvl_mm_load8(type, row + r * rb, i + 8);
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                acc[r][t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * n + i), acc[r][t]);
                acc2[r][t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * n + i + 8), acc2[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) out[r][t] = hsum(_mm256_add_ps(acc[r][t], acc2[r][t]));
#endif
    for (; i < n; i++)
        for (int r = 0; r < R; r++) {
            const float w = kvl_mm_load1(type, row + r * rb, i);
            for (int t = 0; t < NT; t++) out[r][t] += w * x[t * n + i];
        }
}

INLINE void rows_type(int type, float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1) {
    const int64_t n = W->n_in;
    const size_t rb = W->row_bytes;
    float out[4][KVL_MM_GEMV_MAX_TOK];
    int64_t o = o0;
    if (n_tok == 1 && (o1 - o0) % KVL_F_STREAMS == 0) {
        /* decode: rows from KVL_F_STREAMS parts of the range at once: several sequential streams for the memory
         * system and more independent FMA chains (measured +13% with two threads, +27% with one) */
        const int64_t part = (o1 - o0) / KVL_F_STREAMS;
        for (int64_t i = 0; i < part; i++) {
            dot_rows(type, KVL_F_STREAMS, 1, (const uint8_t *)W->data + (o0 + i) * rb, rb * part, x, n, out);
            for (int r = 0; r < KVL_F_STREAMS; r++) y[o0 + i + r * part] = out[r][0];
        }
        return;
    }
    for (; o < o1; ) {
        const uint8_t *row = (const uint8_t *)W->data + o * rb;
        /* adjacent row pairs share the activation loads when there are several tokens */
        const int R = n_tok > 1 && o + 2 <= o1 ? 2 : 1;
        if (n_tok == 1) dot_rows(type, 1, 1, row, rb, x, n, out);
        else if (n_tok == 2 && R == 2) dot_rows(type, 2, 2, row, rb, x, n, out);
        else if (n_tok == 2) dot_rows(type, 1, 2, row, rb, x, n, out);
        else if (R == 2) dot_rows(type, 2, 3, row, rb, x, n, out);
        else dot_rows(type, 1, 3, row, rb, x, n, out);
        for (int r = 0; r < R; r++)
            for (int t = 0; t < n_tok; t++) y[t * W->n_out + o + r] = out[r][t];
        o += R;
    }
}

void kvl_mm_gemv_float(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1) {
    switch (W->type) {
    case KVL_TYPE_F32: rows_type(KVL_TYPE_F32, y, x, W, n_tok, o0, o1); break;
    case KVL_TYPE_F16: rows_type(KVL_TYPE_F16, y, x, W, n_tok, o0, o1); break;
    default: rows_type(KVL_TYPE_BF16, y, x, W, n_tok, o0, o1); break;
    }
}
