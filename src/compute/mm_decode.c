/* Weight decoders to f32 for the GEMM packing and kvl_weight_row: one function per type, AVX2 or scalar. */
#include "compute/mm_internal.h"

int kvl_mm_type_ok(int type) {
    switch (type) {
    case KVL_TYPE_F32: case KVL_TYPE_F16: case KVL_TYPE_BF16:
    case KVL_TYPE_Q8_0: case KVL_TYPE_Q4_K: case KVL_TYPE_Q6_K:
    case KVL_TYPE_Q4_0: case KVL_TYPE_Q4_1: case KVL_TYPE_Q5_0: case KVL_TYPE_Q5_1:
        return 1;
    default:
        return 0;
    }
}

static void decode_f16(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
#ifdef KVL_MM_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
    for (; i < n; i++) d[i] = kvl_mm_h2f(s[i]);
}

static void decode_bf16(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
#ifdef KVL_MM_AVX2
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
        _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
#endif
    for (; i < n; i++) d[i] = kvl_mm_bf2f(s[i]);
}

static void decode_q8_0(const kvl_block_q8_0 *b, float *d, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, d += 32) {
        const float s = kvl_mm_h2f(b[k].d);
#ifdef KVL_MM_AVX2
        const __m256 vs = _mm256_set1_ps(s);
        for (int j = 0; j < 32; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b[k].qs + j)));
            _mm256_storeu_ps(d + j, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(q)));
        }
#else
        for (int j = 0; j < 32; j++) d[j] = s * b[k].qs[j];
#endif
    }
}

static void decode_q4_K(const kvl_block_q4_K *b, float *d, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, d += 256) {
        const float dall = kvl_mm_h2f(b[k].d), dmin = kvl_mm_h2f(b[k].dmin);
        for (int c = 0; c < 4; c++) { /* 64 values: low nibbles of 32 bytes, then their high nibbles */
            const uint8_t *q = b[k].qs + 32 * c;
            int sc0, m0, sc1, m1;
            kvl_mm_q4k_scale_min(b[k].scales, 2 * c, &sc0, &m0);
            kvl_mm_q4k_scale_min(b[k].scales, 2 * c + 1, &sc1, &m1);
            const float d0 = dall * sc0, o0 = dmin * m0, d1 = dall * sc1, o1 = dmin * m1;
            float *y = d + 64 * c;
#ifdef KVL_MM_AVX2
            const __m256 vd0 = _mm256_set1_ps(d0), vo0 = _mm256_set1_ps(-o0);
            const __m256 vd1 = _mm256_set1_ps(d1), vo1 = _mm256_set1_ps(-o1);
            const __m128i mask = _mm_set1_epi8(0x0f);
            for (int j = 0; j < 32; j += 8) {
                __m128i v = _mm_loadl_epi64((const __m128i *)(q + j));
                __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(v, mask)));
                __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), mask)));
                _mm256_storeu_ps(y + j, _mm256_fmadd_ps(vd0, lo, vo0));
                _mm256_storeu_ps(y + 32 + j, _mm256_fmadd_ps(vd1, hi, vo1));
            }
#else
            for (int j = 0; j < 32; j++) {
                y[j] = d0 * (q[j] & 0x0f) - o0;
                y[32 + j] = d1 * (q[j] >> 4) - o1;
            }
#endif
        }
    }
}

static void decode_q6_K(const kvl_block_q6_K *b, float *d, int64_t nb) {
    for (int64_t k = 0; k < nb; k++, d += 256) {
        const float dall = kvl_mm_h2f(b[k].d);
        for (int h = 0; h < 2; h++) { /* 128 values from 64 ql bytes and 32 qh bytes */
            const uint8_t *ql = b[k].ql + 64 * h, *qh = b[k].qh + 32 * h;
            const int8_t *sc = b[k].scales + 8 * h;
            float *y = d + 128 * h;
#ifdef KVL_MM_AVX2
            /* chunk c (32 values): low nibble (c < 2) or high nibble of ql[32 (c % 2) + l], bits 2c of qh[l] */
            const __m256i off = _mm256_set1_epi8(32);
            __m256i q[4];
            kvl_mm_q6k_unpack128(ql, qh, q);
            for (int c = 0; c < 4; c++) {
                int8_t v[32];
                _mm256_storeu_si256((__m256i *)v, _mm256_sub_epi8(q[c], off));
                for (int j = 0; j < 32; j += 8) {
                    const __m256 s = _mm256_set1_ps(dall * sc[2 * c + j / 16]);
                    const __m256i vi = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(v + j)));
                    _mm256_storeu_ps(y + 32 * c + j, _mm256_mul_ps(s, _mm256_cvtepi32_ps(vi)));
                }
            }
#else
            for (int l = 0; l < 32; l++) {
                const int s = l / 16;
                y[l] = dall * sc[s] * (((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
                y[l + 32] = dall * sc[s + 2] * (((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
                y[l + 64] = dall * sc[s + 4] * (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                y[l + 96] = dall * sc[s + 6] * (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
#endif
        }
    }
}

void kvl_mm_decode(int type, const void *row, int64_t k0, int64_t n, float *dst) {
    const uint8_t *r = row;
    switch (type) {
    case KVL_TYPE_F32: memcpy(dst, (const float *)row + k0, (size_t)n * sizeof(float)); break;
    case KVL_TYPE_F16: decode_f16((const uint16_t *)row + k0, dst, n); break;
    case KVL_TYPE_BF16: decode_bf16((const uint16_t *)row + k0, dst, n); break;
    case KVL_TYPE_Q8_0: decode_q8_0((const kvl_block_q8_0 *)(r + k0 / 32 * sizeof(kvl_block_q8_0)), dst, n / 32); break;
    case KVL_TYPE_Q4_0: case KVL_TYPE_Q4_1: case KVL_TYPE_Q5_0: case KVL_TYPE_Q5_1:
        /* rare (rows of K-quant files that are not a multiple of 256): the reference decoder serves */
        kvl_dequant_row(type, r + k0 / 32 * kvl_type_block_bytes(type), dst, n);
        break;
    case KVL_TYPE_Q4_K: decode_q4_K((const kvl_block_q4_K *)(r + k0 / 256 * sizeof(kvl_block_q4_K)), dst, n / 256); break;
    case KVL_TYPE_Q6_K: decode_q6_K((const kvl_block_q6_K *)(r + k0 / 256 * sizeof(kvl_block_q6_K)), dst, n / 256); break;
    default: memset(dst, 0, (size_t)n * sizeof(float)); break;
    }
}
