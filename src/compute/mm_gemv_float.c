/* Row-streaming matmul for F32 / F16 / BF16 weights with f32 activations and f32 accumulation (the float
 * types must match transformers to 1e-4, so no activation quantization here). Each row is read once and
 * dotted with up to KVL_MM_GEMV_MAX_TOK tokens while in registers. */
#include "compute/mm_internal.h"

#define INLINE static inline __attribute__((always_inline))

#ifdef KVL_MM_AVX2
INLINE __m256 load8(int type, const void *row, int64_t i) {
    if (type == KVL_TYPE_F32) return _mm256_loadu_ps((const float *)row + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + i));
    if (type == KVL_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

INLINE float load1(int type, const void *row, int64_t i) {
    if (type == KVL_TYPE_F32) return ((const float *)row)[i];
    if (type == KVL_TYPE_F16) return kvl_mm_h2f(((const uint16_t *)row)[i]);
    return kvl_mm_bf2f(((const uint16_t *)row)[i]);
}

/* out[t] = row . x[t] for NT tokens; U independent accumulators per token hide the FMA latency. */
INLINE void dot_rows(int type, int NT, const void *row, const float *x, int64_t n, float *out) {
    int64_t i = 0;
    float tail[KVL_MM_GEMV_MAX_TOK] = {0};
#ifdef KVL_MM_AVX2
    enum { U = 4 };
    const int u = NT == 1 ? U : 2;
    __m256 acc[KVL_MM_GEMV_MAX_TOK][U];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
        for (int j = 0; j < u; j++) acc[t][j] = _mm256_setzero_ps();
    for (; i + 8 * u <= n; i += 8 * u) {
#pragma GCC unroll 4
        for (int j = 0; j < u; j++) {
            const __m256 w = load8(type, row, i + 8 * j);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++)
                acc[t][j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + t * n + i + 8 * j), acc[t][j]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 w = load8(type, row, i);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[t][0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + t * n + i), acc[t][0]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        __m256 s = acc[t][0];
        for (int j = 1; j < u; j++) s = _mm256_add_ps(s, acc[t][j]);
        tail[t] = hsum(s);
    }
#endif
    for (; i < n; i++) {
        const float w = load1(type, row, i);
        for (int t = 0; t < NT; t++) tail[t] += w * x[t * n + i];
    }
    for (int t = 0; t < NT; t++) out[t] = tail[t];
}

INLINE void rows_type(int type, float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1) {
    const int64_t n = W->n_in;
    float out[KVL_MM_GEMV_MAX_TOK];
    for (int64_t o = o0; o < o1; o++) {
        const void *row = (const uint8_t *)W->data + o * W->row_bytes;
        switch (n_tok) {
        case 1: dot_rows(type, 1, row, x, n, out); break;
        case 2: dot_rows(type, 2, row, x, n, out); break;
        default: dot_rows(type, 3, row, x, n, out); break;
        }
        for (int t = 0; t < n_tok; t++) y[t * W->n_out + o] = out[t];
    }
}

void kvl_mm_gemv_float(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1) {
    switch (W->type) {
    case KVL_TYPE_F32: rows_type(KVL_TYPE_F32, y, x, W, n_tok, o0, o1); break;
    case KVL_TYPE_F16: rows_type(KVL_TYPE_F16, y, x, W, n_tok, o0, o1); break;
    default: rows_type(KVL_TYPE_BF16, y, x, W, n_tok, o0, o1); break;
    }
}
