/* Blocked GEMM for many tokens (prefill). The activations are packed once per call into tiles of 6 tokens x KC
 * columns laid out [k][6] (contiguous, so no cache-set conflicts from rows n_in * 4 bytes apart). For each panel
 * of MC weight rows and each k-block, the weights are decoded once into f32 sub-panels of 16 rows laid out
 * [k][16] (the panel, 128 KB, stays in L2); a 6x16 register-blocked FMA micro-kernel then runs every token tile
 * (12 KB, in L1) against the panel's sub-panels. */
#include "compute/mm_internal.h"

#define INLINE static inline __attribute__((always_inline))

/* KC = 512 and MC = 64 measured best on Zen 3 (1 MB L2, 32 KB L1) among KC 128..1024 x MC 16..128 */
#ifndef KVL_GEMM_KC
#define KVL_GEMM_KC 512
#endif
enum { MR = 6, NR = 16, KC = KVL_GEMM_KC, MC = KVL_MM_GEMM_ROWS };

size_t kvl_mm_gemm_scratch_bytes(void) { return (size_t)(MC * KC + 8 * KC) * sizeof(float); }

size_t kvl_mm_gemm_xpack_bytes(int64_t n_in, int n_tok) {
#ifdef KVL_MM_AVX2
    return (size_t)n_in * (size_t)((n_tok + MR - 1) / MR) * MR * sizeof(float);
#else
    (void)n_in, (void)n_tok;
    return 0;
#endif
}

#ifdef KVL_MM_AVX2
/* Tile (k-block at k0 of width kc, token group g) of the packed activations. */
static inline float *xtile(float *Xp, int64_t k0, int64_t kc, int n_groups, int g) {
    return Xp + k0 * n_groups * MR + (int64_t)g * MR * kc;
}

void kvl_mm_gemm_pack_x(float *Xp, const float *x, int64_t n_in, int n_tok, int g) {
    const int n_groups = (n_tok + MR - 1) / MR;
    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
        const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
        float *A = xtile(Xp, k0, kc, n_groups, g);
        const int mr = n_tok - g * MR < MR ? n_tok - g * MR : MR;
        const float *xr = x + (int64_t)g * MR * n_in + k0;
        if (mr == MR) { /* written in order; the six rows are read as six streams */
            for (int64_t k = 0; k < kc; k++)
                for (int i = 0; i < MR; i++) A[MR * k + i] = xr[i * n_in + k];
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int i = 0; i < MR; i++) A[MR * k + i] = i < mr ? xr[i * n_in + k] : 0; /* padding tokens */
        }
    }
}

#ifndef KVL_MM_AVX512
/* C[mr][nr] (+)= A[kc][6]^T * B[kc][16]; C rows have stride ldc. */
static void ukernel(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, int accumulate, int mr,
                    int nr) {
    __m256 c[MR][2];
    /* The C tile (6 rows n_out apart) is usually in L3 only; fetch it for writing while the k-loop runs. */
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(C + i * ldc, 1, 3);
        __builtin_prefetch(C + i * ldc + nr - 1, 1, 3);
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(B + NR * k), b1 = _mm256_load_ps(B + NR * k + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 a = _mm256_broadcast_ss(A + MR * k + i);
            c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
        }
    }
    if (nr == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
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
        for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
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
#endif

#ifdef KVL_MM_AVX512
/* Write the mr x (NP sub-panels) accumulator tile c to C (added to it with accumulate); rows of a sub-panel past the
 * panel's nr rows are masked off. Shared by the f32 and the bf16 micro-kernels. */
INLINE void store_tile(__m512 c[MR][4], float *C, int64_t ldc, int accumulate, int mr, int nr, const int NP) {
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) {
        const int left = nr - NR * j; /* rows of sub-panel j that exist in W (none past them) */
        if (left <= 0) break;
        const __mmask16 m = left >= NR ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
            float *ci = C + i * ldc + NR * j;
            if (accumulate) c[i][j] = _mm512_add_ps(c[i][j], _mm512_maskz_loadu_ps(m, ci));
            _mm512_mask_storeu_ps(ci, m, c[i][j]);
        }
    }
}

/* AVX-512: C[mr][nr] (+)= A[kc][6]^T * (NP sub-panels side by side, sub-panel j at B + j * bstride): one zmm per
 * sub-panel row, 6 x NP accumulators (24 of the 32 registers at NP 4), the token values broadcast from memory. */
INLINE void ukernel512_np(int64_t kc, const float *A, const float *B, int64_t bstride, float *C, int64_t ldc,
                          int accumulate, int mr, int nr, const int NP) {
    __m512 c[MR][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < NP; j++) __builtin_prefetch(C + i * ldc + NR * j, 1, 3);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) c[i][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) b[j] = _mm512_loadu_ps(B + j * bstride + NR * k);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m512 a = _mm512_set1_ps(A[MR * k + i]);
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++) c[i][j] = _mm512_fmadd_ps(a, b[j], c[i][j]);
        }
    }
    store_tile(c, C, ldc, accumulate, mr, nr, NP);
}

/* All np (1..4) sub-panels of a panel for one token tile; nr counts the panel's rows. */
static void ukernel512(int64_t kc, const float *A, const float *B, int64_t bstride, float *C, int64_t ldc,
                       int accumulate, int mr, int nr, int np) {
    switch (np) {
    case 4: ukernel512_np(kc, A, B, bstride, C, ldc, accumulate, mr, nr, 4); break;
    case 3: ukernel512_np(kc, A, B, bstride, C, ldc, accumulate, mr, nr, 3); break;
    case 2: ukernel512_np(kc, A, B, bstride, C, ldc, accumulate, mr, nr, 2); break;
    default: ukernel512_np(kc, A, B, bstride, C, ldc, accumulate, mr, nr, 1); break;
    }
}
#endif

/* Scatter a decoded row segment into lane `lane` of a [kc][16] sub-panel. */
static void pack_lane(float *P, const float *src, int64_t kc, int lane) {
    for (int64_t k = 0; k < kc; k++) P[NR * k + lane] = src[k];
}

/* Transpose 8 rows (row i at src + i * rb bytes, values k0.. of `type`, -1 = f32) into lanes 8h..8h+7 of a
 * [kc][16] sub-panel, 8x8 at a time. Float weight types are read in place, the others decoded first. */
INLINE void pack8(float *P, const uint8_t *src, size_t rb, int type, int64_t k0, int64_t kc, int h) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8], t[8];
        for (int i = 0; i < 8; i++) r[i] = kvl_mm_load8(type, src + i * rb, k0 + k);
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
        for (int i = 0; i < 8; i++) P[NR * k + 8 * h + i] = kvl_mm_load1(type, src + i * rb, k0 + k);
}

/* Rows [o0, o0 + mc), mc <= MC, all tokens. */
static void gemm_panel(float *y, const float *x, float *Xp, const kvl_weight *W, int n_tok, int64_t o0, int mc,
                       float *P, float *tmp) {
    (void)x;
    const int64_t n_in = W->n_in, n_out = W->n_out;
    const int np = (mc + NR - 1) / NR, n_groups = (n_tok + MR - 1) / MR;
    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
        const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
        /* Pack: 8 rows at a time are transposed (quantized types decoded into tmp first); leftover rows lane by
         * lane. */
        for (int p = 0; p < np; p++) {
            float *Pp = P + (int64_t)p * NR * kc;
            const int rows = mc - NR * p < NR ? mc - NR * p : NR;
            if (rows < NR) memset(Pp, 0, (size_t)(NR * kc) * sizeof(float));
            int r = 0;
            for (; r + 8 <= rows; r += 8) {
                const uint8_t *w8 = (const uint8_t *)W->data + (o0 + NR * p + r) * W->row_bytes;
                if (W->type == KVL_TYPE_F32 || W->type == KVL_TYPE_F16 || W->type == KVL_TYPE_BF16) {
                    pack8(Pp, w8, W->row_bytes, W->type, k0, kc, r / 8);
                } else {
                    for (int i = 0; i < 8; i++) kvl_mm_decode(W->type, w8 + i * W->row_bytes, k0, kc, tmp + i * kc);
                    pack8(Pp, (const uint8_t *)tmp, kc * sizeof(float), -1, 0, kc, r / 8);
                }
            }
            for (; r < rows; r++) {
                kvl_mm_decode(W->type, (const uint8_t *)W->data + (o0 + NR * p + r) * W->row_bytes, k0, kc, tmp);
                pack_lane(Pp, tmp, kc, r);
            }
        }
        /* Token tile outer: its 12 KB stay in L1 across the sub-panels, which stream from L2. */
        for (int g = 0; g < n_groups; g++) {
            const int mr = n_tok - g * MR < MR ? n_tok - g * MR : MR;
#ifdef KVL_MM_AVX512
            ukernel512(kc, xtile(Xp, k0, kc, n_groups, g), P, NR * kc, y + (int64_t)g * MR * n_out + o0, n_out, k0 > 0,
                       mr, mc, np);
#else
            for (int p = 0; p < np; p++) {
                const int nr = mc - NR * p < NR ? mc - NR * p : NR;
                ukernel(kc, xtile(Xp, k0, kc, n_groups, g), P + (int64_t)p * NR * kc,
                        y + (int64_t)g * MR * n_out + o0 + NR * p, n_out, k0 > 0, mr, nr);
            }
#endif
        }
    }
}

#ifdef KVL_MM_AVX512
#ifndef KVL_BFP_PREFETCH
#define KVL_BFP_PREFETCH 2048
#endif
/* BF16 weights prepared once (kvl_mm_bfp_get): panel p (rows 64p .. 64p + 63, missing rows zero) is n_in x 64
 * bf16, [k][64]; within the 64 values of one k, row 16s + r (sub-panel s, r < 16) sits at
 *   32 (s / 2) + 8 (r / 4) + 4 (s % 2) + r % 4,
 * so that unpacking each 64-byte half with zeros below (vpunpcklwd / vpunpckhwd: words 0-3 and 4-7 of every
 * 128-bit lane) gives rows 0-15 / 16-31 (first half) and 32-47 / 48-63 (second half) as f32, in order. */
static void bfp_build(const kvl_weight *W, uint8_t *dst, int64_t p) {
    uint16_t *P = (uint16_t *)dst;
    const int64_t n_in = W->n_in;
    for (int R = 0; R < MC; R++) {
        const int sp = R / NR, r = R % NR;
        const int off = 32 * (sp / 2) + 8 * (r / 4) + 4 * (sp % 2) + r % 4;
        const int64_t row = MC * p + R;
        if (row >= W->n_out) {
            for (int64_t k = 0; k < n_in; k++) P[k * MC + off] = 0;
            continue;
        }
        const uint16_t *src = (const uint16_t *)((const uint8_t *)W->data + row * W->row_bytes);
        for (int64_t k = 0; k < n_in; k++) P[k * MC + off] = src[k];
    }
}

const uint16_t *kvl_mm_bfp_get(const kvl_weight *W) {
    if (W->type != KVL_TYPE_BF16 || W->n_in <= 0 || W->n_out <= 0) return NULL;
    return kvl_mm_prep_get(W, (size_t)W->n_in * MC * sizeof(uint16_t), (W->n_out + MC - 1) / MC, bfp_build);
}

/* ukernel512_np with NP = 4 on a prepared panel at k0 (B), for exactly MRK (= mr) tokens: the same FMAs in the
 * same order on the same f32 weight values. */
INLINE void ukernel512_bfp(int64_t kc, const float *A, const uint16_t *B, float *C, int64_t ldc, int accumulate,
                           int nr, const int MRK) {
    __m512 c[MR][4];
    for (int i = 0; i < MRK; i++)
        for (int j = 0; j < 4; j++) __builtin_prefetch(C + i * ldc + NR * j, 1, 3);
#pragma GCC unroll 6
    for (int i = 0; i < MRK; i++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) c[i][j] = _mm512_setzero_ps();
    const __m512i z = _mm512_setzero_si512();
    for (int64_t k = 0; k < kc; k++) {
        /* one stream per thread: fetched well ahead (the hardware prefetcher alone keeps too few lines in flight) */
        _mm_prefetch((const char *)(B + MC * k) + KVL_BFP_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(B + MC * k) + KVL_BFP_PREFETCH + 64, _MM_HINT_T0);
        const __m512i v0 = _mm512_load_si512(B + MC * k), v1 = _mm512_load_si512(B + MC * k + 32);
        const __m512 b[4] = {_mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v0)),
                             _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v0)),
                             _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v1)),
                             _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v1))};
#pragma GCC unroll 6
        for (int i = 0; i < MRK; i++) {
            const __m512 a = _mm512_set1_ps(A[MR * k + i]);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) c[i][j] = _mm512_fmadd_ps(a, b[j], c[i][j]);
        }
    }
    store_tile(c, C, ldc, accumulate, MRK, nr, 4);
}

/* One token (decode): the panel's whole width at once as two streams (first and second half of k: the memory
 * system keeps more lines in flight, 8 FMA chains), the halves added at the end. A is the packed token, [k][6]. */
static void bfp_row1(int64_t n_in, const float *A, const uint16_t *B, float *C, int nr) {
    const int64_t h = n_in / 2;
    const uint16_t *B2 = B + h * MC;
    const __m512i z = _mm512_setzero_si512();
    __m512 c[2][4];
    for (int j = 0; j < 4; j++) c[0][j] = c[1][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n_in - h; k++) {
        const int s2 = k < h; /* the second stream (k + h) always exists; the first one ends a value early if odd */
        _mm_prefetch((const char *)(B2 + MC * k) + KVL_BFP_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(B2 + MC * k) + KVL_BFP_PREFETCH + 64, _MM_HINT_T0);
        const __m512i u0 = _mm512_load_si512(B2 + MC * k), u1 = _mm512_load_si512(B2 + MC * k + 32);
        const __m512 a2 = _mm512_set1_ps(A[MR * (k + h)]);
        c[1][0] = _mm512_fmadd_ps(a2, _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, u0)), c[1][0]);
        c[1][1] = _mm512_fmadd_ps(a2, _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, u0)), c[1][1]);
        c[1][2] = _mm512_fmadd_ps(a2, _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, u1)), c[1][2]);
        c[1][3] = _mm512_fmadd_ps(a2, _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, u1)), c[1][3]);
        if (s2) {
            _mm_prefetch((const char *)(B + MC * k) + KVL_BFP_PREFETCH, _MM_HINT_T0);
            _mm_prefetch((const char *)(B + MC * k) + KVL_BFP_PREFETCH + 64, _MM_HINT_T0);
            const __m512i v0 = _mm512_load_si512(B + MC * k), v1 = _mm512_load_si512(B + MC * k + 32);
            const __m512 a = _mm512_set1_ps(A[MR * k]);
            c[0][0] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v0)), c[0][0]);
            c[0][1] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v0)), c[0][1]);
            c[0][2] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v1)), c[0][2]);
            c[0][3] = _mm512_fmadd_ps(a, _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v1)), c[0][3]);
        }
    }
    for (int j = 0; j < 4; j++) {
        const int left = nr - NR * j;
        if (left <= 0) break;
        const __mmask16 m = left >= NR ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        _mm512_mask_storeu_ps(C + NR * j, m, _mm512_add_ps(c[0][j], c[1][j]));
    }
}

void kvl_mm_bfp_gemm(float *y, float *Xp, const kvl_weight *W, const uint16_t *prep, int n_tok, int64_t o0,
                     int64_t o1) {
    const int64_t n_in = W->n_in, n_out = W->n_out;
    const int n_groups = (n_tok + MR - 1) / MR;
    for (int64_t o = o0; o < o1; o += MC) {
        const int mc = (int)(o1 - o < MC ? o1 - o : MC);
        const uint16_t *Pp = prep + (o / MC) * n_in * MC;
        if (n_tok == 1) { /* one token tile: its packed values are [k][6] over the whole width */
            bfp_row1(n_in, Xp, Pp, y + o, mc);
            continue;
        }
        for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
            const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
            for (int g = 0; g < n_groups; g++) {
                const int mr = n_tok - g * MR < MR ? n_tok - g * MR : MR;
                const float *A = xtile(Xp, k0, kc, n_groups, g);
                float *C = y + (int64_t)g * MR * n_out + o;
                switch (mr) {
                case 1: ukernel512_bfp(kc, A, Pp + k0 * MC, C, n_out, k0 > 0, mc, 1); break;
                case 2: ukernel512_bfp(kc, A, Pp + k0 * MC, C, n_out, k0 > 0, mc, 2); break;
                case 3: ukernel512_bfp(kc, A, Pp + k0 * MC, C, n_out, k0 > 0, mc, 3); break;
                case 4: ukernel512_bfp(kc, A, Pp + k0 * MC, C, n_out, k0 > 0, mc, 4); break;
                case 5: ukernel512_bfp(kc, A, Pp + k0 * MC, C, n_out, k0 > 0, mc, 5); break;
                default: ukernel512_bfp(kc, A, Pp + k0 * MC, C, n_out, k0 > 0, mc, 6); break;
                }
            }
        }
    }
}
#endif

#ifdef KVL_MM_BF16DOT
/* BF16 weights on vdpbf16ps. Each 32-bit lane holds a pair of adjacent k: the weights stay bf16 in the panel
 * (sub-panels [kc/2][16] pairs, transposed by pack8 as raw 32-bit words, no widening), the activations become
 * bf16 pairs per token tile laid out [kc/2][terms][6] (terms: hi, and lo in SPLIT mode). The micro-kernel is the
 * f32 one's 6 tokens x 4 sub-panels with one vdpbf16ps (two in SPLIT) per pair of k in place of two FMAs. */
static inline uint32_t *bf_xtile(uint32_t *Xp, int64_t k0, int64_t kc, int n_groups, int g, int nt) {
    return Xp + k0 / 2 * n_groups * MR * nt + (int64_t)g * MR * nt * (kc / 2);
}

void kvl_mm_bf16gemm_pack_x(uint32_t *Xp, const float *x, int64_t n_in, int n_tok, int g, int mode) {
    const int n_groups = (n_tok + MR - 1) / MR, nt = mode == KVL_MM_BF16_SPLIT ? 2 : 1;
    const int mr = n_tok - g * MR < MR ? n_tok - g * MR : MR;
    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
        const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
        uint32_t *A = bf_xtile(Xp, k0, kc, n_groups, g, nt);
        for (int i = 0; i < MR; i++) {
            const float *xr = x + ((int64_t)g * MR + i) * n_in + k0;
            for (int64_t k = 0; k < kc; k += 16) {
                const int left = kc - k < 16 ? (int)(kc - k) : 16; /* even: n_in is */
                const __mmask16 m = (__mmask16)((1u << left) - 1);
                const __m512 v = i < mr ? _mm512_maskz_loadu_ps(m, xr + k) : _mm512_setzero_ps();
                uint32_t hi[8], lo[8];
                const __m256bh h = _mm512_cvtneps_pbh(v); /* round to nearest even */
                _mm256_storeu_si256((__m256i *)hi, (__m256i)h);
                if (nt == 2) {
                    const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
                    const __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf)); /* exact difference */
                    _mm256_storeu_si256((__m256i *)lo, (__m256i)l);
                }
                for (int p = 0; p < left / 2; p++) {
                    uint32_t *a = A + (k / 2 + p) * nt * MR;
                    a[i] = hi[p];
                    if (nt == 2) a[MR + i] = lo[p];
                }
            }
        }
    }
}

/* C[mr][nr] (+)= A^T B for NP sub-panels (sub-panel j at B + j * bstride words), NT activation terms. */
INLINE void ukbf_np(int64_t kc2, const uint32_t *A, const uint32_t *B, int64_t bstride, float *C, int64_t ldc,
                    int accumulate, int mr, int nr, const int NP, const int NT) {
    __m512 c[MR][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < NP; j++) __builtin_prefetch(C + i * ldc + NR * j, 1, 3);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) c[i][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc2; k++) {
        __m512bh b[4];
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) b[j] = (__m512bh)_mm512_loadu_si512(B + j * bstride + NR * k);
        const uint32_t *a = A + k * NT * MR;
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m512bh ah = (__m512bh)_mm512_set1_epi32((int)a[i]);
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++) c[i][j] = _mm512_dpbf16_ps(c[i][j], ah, b[j]);
            if (NT == 2) {
                const __m512bh al = (__m512bh)_mm512_set1_epi32((int)a[MR + i]);
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++) c[i][j] = _mm512_dpbf16_ps(c[i][j], al, b[j]);
            }
        }
    }
    store_tile(c, C, ldc, accumulate, mr, nr, NP);
}

static void ukbf(int64_t kc2, const uint32_t *A, const uint32_t *B, int64_t bstride, float *C, int64_t ldc,
                 int accumulate, int mr, int nr, int np, int nt) {
    if (nt == 2) {
        switch (np) {
        case 4: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 4, 2); break;
        case 3: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 3, 2); break;
        case 2: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 2, 2); break;
        default: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 1, 2); break;
        }
    } else {
        switch (np) {
        case 4: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 4, 1); break;
        case 3: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 3, 1); break;
        case 2: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 2, 1); break;
        default: ukbf_np(kc2, A, B, bstride, C, ldc, accumulate, mr, nr, 1, 1); break;
        }
    }
}

void kvl_mm_bf16gemm(float *y, const uint32_t *Xp, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1, int mode,
                     void *scratch) {
    const int64_t n_in = W->n_in, n_out = W->n_out;
    const int n_groups = (n_tok + MR - 1) / MR, nt = mode == KVL_MM_BF16_SPLIT ? 2 : 1;
    const size_t rb = W->row_bytes;
    uint32_t *P = scratch; /* MC rows x KC/2 pairs: a quarter of the f32 GEMM's panel bytes per k */
    for (int64_t o = o0; o < o1; o += MC) {
        const int mc = (int)(o1 - o < MC ? o1 - o : MC), np = (mc + NR - 1) / NR;
        for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
            const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC, kc2 = kc / 2;
            for (int p = 0; p < np; p++) {
                uint32_t *Pp = P + (int64_t)p * NR * kc2;
                const int rows = mc - NR * p < NR ? mc - NR * p : NR;
                if (rows < NR) memset(Pp, 0, (size_t)(NR * kc2) * sizeof(uint32_t));
                int r = 0;
                for (; r + 8 <= rows; r += 8) /* bf16 pairs moved as 32-bit words (type -1: raw loads) */
                    pack8((float *)Pp, (const uint8_t *)W->data + (o + NR * p + r) * rb, rb, -1, k0 / 2, kc2, r / 8);
                for (; r < rows; r++) {
                    const uint8_t *row = (const uint8_t *)W->data + (o + NR * p + r) * rb + k0 * 2;
                    for (int64_t k = 0; k < kc2; k++) memcpy(Pp + NR * k + r, row + 4 * k, 4);
                }
            }
            for (int g = 0; g < n_groups; g++) {
                const int mr = n_tok - g * MR < MR ? n_tok - g * MR : MR;
                ukbf(kc2, bf_xtile((uint32_t *)Xp, k0, kc, n_groups, g, nt), P, NR * kc2,
                     y + (int64_t)g * MR * n_out + o, n_out, k0 > 0, mr, mc, np, nt);
            }
        }
    }
}
#endif
#else
/* Portable: decode a k-block of one row, dot it with every token. */
void kvl_mm_gemm_pack_x(float *Xp, const float *x, int64_t n_in, int n_tok, int g) {
    (void)Xp, (void)x, (void)n_in, (void)n_tok, (void)g;
}

static void gemm_panel(float *y, const float *x, float *Xp, const kvl_weight *W, int n_tok, int64_t o0, int mc,
                       float *P, float *tmp) {
    (void)P, (void)Xp;
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

void kvl_mm_gemm(float *y, const float *x, float *Xp, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1,
                 void *scratch) {
    float *P = scratch, *tmp = P + MC * KC;
    for (int64_t o = o0; o < o1; o += MC) gemm_panel(y, x, Xp, W, n_tok, o, (int)(o1 - o < MC ? o1 - o : MC), P, tmp);
}
