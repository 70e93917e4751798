/* Blocked GEMM for many tokens (prefill). For each panel of MC weight rows and each k-block of KC columns the
 * weights are decoded once into f32 sub-panels of 16 rows laid out [k][16], then a 6x16 register-blocked FMA
 * micro-kernel runs over all tokens. Sizes: a sub-panel (16 KB) stays in L1 while 6 token rows stream past it;
 * the MC x KC panel (64 KB) and the KC-wide slice of the activations stay in L2 (1 MB). */
#include "compute/mm_internal.h"

#define INLINE static inline __attribute__((always_inline))

enum { MR = 6, NR = 16, KC = 256, MC = 64 };

size_t kvl_mm_gemm_scratch_bytes(void) { return (size_t)(MC * KC + 8 * KC) * sizeof(float); }

#ifdef KVL_MM_AVX2
/* C[MRc][nr] (+)= A[MRc][kc] * B[kc][16]^T; A rows have stride lda, C rows stride ldc. */
INLINE void ukernel(int MRc, int64_t kc, const float *B, const float *A, int64_t lda, float *C, int64_t ldc,
                    int accumulate, int nr) {
    __m256 c[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MRc; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(B + NR * k), b1 = _mm256_load_ps(B + NR * k + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MRc; i++) {
            const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
            c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
        }
    }
    if (nr == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < MRc; i++) {
            float *ci = C + i * ldc;
            if (accumulate) {
                c[i][0] = _mm256_add_ps(c[i][0], _mm256_loadu_ps(ci));
                c[i][1] = _mm256_add_ps(c[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, c[i][0]);
            _mm256_storeu_ps(ci + 8, c[i][1]);
        }
    } else { /* last rows of W: only nr < 16 outputs exist, the masks keep the loads and stores inside y */
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
#pragma GCC unroll 6
        for (int i = 0; i < MRc; i++) {
            float *ci = C + i * ldc;
            if (accumulate) {
                c[i][0] = _mm256_add_ps(c[i][0], _mm256_maskload_ps(ci, m0));
                c[i][1] = _mm256_add_ps(c[i][1], _mm256_maskload_ps(ci + 8, m1));
            }
            _mm256_maskstore_ps(ci, m0, c[i][0]);
            _mm256_maskstore_ps(ci + 8, m1, c[i][1]);
        }
    }
}

static void ukernel_any(int mr, int64_t kc, const float *B, const float *A, int64_t lda, float *C, int64_t ldc,
                        int accumulate, int nr) {
    switch (mr) {
    case 6: ukernel(6, kc, B, A, lda, C, ldc, accumulate, nr); break;
    case 5: ukernel(5, kc, B, A, lda, C, ldc, accumulate, nr); break;
    case 4: ukernel(4, kc, B, A, lda, C, ldc, accumulate, nr); break;
    case 3: ukernel(3, kc, B, A, lda, C, ldc, accumulate, nr); break;
    case 2: ukernel(2, kc, B, A, lda, C, ldc, accumulate, nr); break;
    default: ukernel(1, kc, B, A, lda, C, ldc, accumulate, nr); break;
    }
}

/* Scatter a decoded row segment into lane `lane` of a [kc][16] sub-panel. */
static void pack_lane(float *P, const float *src, int64_t kc, int lane) {
    for (int64_t k = 0; k < kc; k++) P[NR * k + lane] = src[k];
}

/* Transpose 8 decoded rows (stride ld) into lanes 8h..8h+7 of a [kc][16] sub-panel, 8x8 at a time. */
static void pack8(float *P, const float *src, int64_t ld, int64_t kc, int h) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8], t[8];
        for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ld + k);
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 8; i += 4) {
            r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
            r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
            r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
            r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
        }
        /* r[c] (c < 4) holds column c of rows 0-3 in its low half and column c+4 in its high half; r[c+4] the
         * same for rows 4-7 */
        float *d = P + NR * k + 8 * h;
        _mm256_store_ps(d + 0 * NR, _mm256_permute2f128_ps(r[0], r[4], 0x20));
        _mm256_store_ps(d + 1 * NR, _mm256_permute2f128_ps(r[1], r[5], 0x20));
        _mm256_store_ps(d + 2 * NR, _mm256_permute2f128_ps(r[2], r[6], 0x20));
        _mm256_store_ps(d + 3 * NR, _mm256_permute2f128_ps(r[3], r[7], 0x20));
        _mm256_store_ps(d + 4 * NR, _mm256_permute2f128_ps(r[0], r[4], 0x31));
        _mm256_store_ps(d + 5 * NR, _mm256_permute2f128_ps(r[1], r[5], 0x31));
        _mm256_store_ps(d + 6 * NR, _mm256_permute2f128_ps(r[2], r[6], 0x31));
        _mm256_store_ps(d + 7 * NR, _mm256_permute2f128_ps(r[3], r[7], 0x31));
    }
    for (; k < kc; k++)
        for (int i = 0; i < 8; i++) P[NR * k + 8 * h + i] = src[i * ld + k];
}

/* Rows [o0, o0 + mc), mc <= MC, all tokens. */
static void gemm_panel(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int mc, float *P,
                       float *tmp) {
    const int64_t n_in = W->n_in, n_out = W->n_out;
    const int np = (mc + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
        const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
        /* Pack: 8 rows at a time are decoded into tmp (8 x kc) and transposed; leftover rows lane by lane. */
        for (int p = 0; p < np; p++) {
            float *Pp = P + (int64_t)p * NR * kc;
            const int rows = mc - NR * p < NR ? mc - NR * p : NR;
            if (rows < NR) memset(Pp, 0, (size_t)(NR * kc) * sizeof(float));
            int r = 0;
            for (; r + 8 <= rows; r += 8) {
                for (int i = 0; i < 8; i++)
                    kvl_mm_decode(W->type, (const uint8_t *)W->data + (o0 + NR * p + r + i) * W->row_bytes, k0, kc,
                                  tmp + i * kc);
                pack8(Pp, tmp, kc, kc, r / 8);
            }
            for (; r < rows; r++) {
                kvl_mm_decode(W->type, (const uint8_t *)W->data + (o0 + NR * p + r) * W->row_bytes, k0, kc, tmp);
                pack_lane(Pp, tmp, kc, r);
            }
        }
        for (int t0 = 0; t0 < n_tok; t0 += MR) {
            const int mr = n_tok - t0 < MR ? n_tok - t0 : MR;
            for (int p = 0; p < np; p++) {
                const int nr = mc - NR * p < NR ? mc - NR * p : NR;
                ukernel_any(mr, kc, P + (int64_t)p * NR * kc, x + t0 * n_in + k0, n_in, y + t0 * n_out + o0 + NR * p,
                            n_out, k0 > 0, nr);
            }
        }
    }
}
#else
/* Portable: decode a k-block of one row, dot it with every token. */
static void gemm_panel(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int mc, float *P,
                       float *tmp) {
    (void)P;
    const int64_t n_in = W->n_in, n_out = W->n_out;
    for (int64_t o = o0; o < o0 + mc; o++) {
        for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
            const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
            kvl_mm_decode(W->type, (const uint8_t *)W->data + o * W->row_bytes, k0, kc, tmp);
            for (int t = 0; t < n_tok; t++) {
                const float *xt = x + t * n_in + k0;
                float s = 0;
                for (int64_t k = 0; k < kc; k++) s += tmp[k] * xt[k];
                y[t * n_out + o] = k0 ? y[t * n_out + o] + s : s;
            }
        }
    }
}
#endif

void kvl_mm_gemm(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1, void *scratch) {
    float *P = scratch, *tmp = P + MC * KC;
    for (int64_t o = o0; o < o1; o += MC) gemm_panel(y, x, W, n_tok, o, (int)(o1 - o < MC ? o1 - o : MC), P, tmp);
}
