/* Q8_0 weights in a prepared layout for AVX-512 VNNI (KVL_MM_VNNI512 builds): built once per weight, then read
 * in place by every product with that weight, from a single decode row to a prompt of many tokens.
 *
 * Why: the GEMM of mm_gemm_q8.c copies each 64-row panel into its interleaved layout on every call; at 4-64 rows
 * (batched decoding) that copy cost as much as the arithmetic. Here the copy is made once.
 *
 * Layout (the same bytes per row as Q8_0: 34 per 32 values; rows padded to a multiple of 16, blocks to pairs):
 *   sub-panel p of 16 rows (rows 16p .. 16p + 15), block pairs c = 0 .. ceil(nblk / 2) - 1, 1088 bytes each:
 *     [h = 0, 1] 512 bytes: the 32 weights of block 2c + h of the 16 rows as u8 (w + 128), [k4 = 0..7][row][4]
 *     [h = 0, 1] 32 bytes:  the 16 rows' f16 scales of block 2c + h
 *   so one 64-byte load holds 4 consecutive weights of 16 rows: the operand of one vpdpbusd; padding rows and
 *   blocks hold w = 0 (byte 0x80) and scale 0. A pair is 17 cache lines, so every 64-byte load is aligned.
 * Activations: quantized per 32 values exactly as in the other int8 paths (kvl_mm_quantize_x), kept signed, in
 * tiles of 4 tokens: int32 X[n_in / 4][4] (4 bytes of token t), f32 Xd[nblk][4], int32 Xc[nblk][4] =
 * -128 * (sum of the token's 32 q of the block). vpdpbusd(u = w + 128, s = q) sums (w + 128) q; starting from Xc
 * leaves exactly sum w q in int32, the same integer as mm_gemm_q8.c (which offsets the activations instead),
 * and the float steps are the same too (fma of that sum with dw * dx, blocks in order), so for more than
 * KVL_MM_GEMV_MAX_TOK tokens the results are bit for bit those of the per-call GEMM. For 1-3 tokens they differ
 * from the AVX2 row kernels only in the order of the float additions.
 *
 * Each weight block is loaded once per tile of up to 4 tokens and dotted with all of them (the small-batch
 * case: 2-8 decode rows read the weights once or twice, the second time from L2).
 *
 * Built and owned through mm_prep.c (memory, on/off). */
#include "compute/mm_internal.h"

#ifdef KVL_MM_VNNI512

enum { MT = KVL_MM_Q8P_GROUP, NR = 16, PAIR = 1088 };
#ifndef KVL_Q8P_PREFETCH
#define KVL_Q8P_PREFETCH 2048
#endif
#ifndef KVL_Q8P_PREFETCH_MR
#define KVL_Q8P_PREFETCH_MR 2
#endif

static int64_t n_pairs(int64_t n_in) { return (n_in / 32 + 1) / 2; }
static size_t panel_bytes(int64_t n_in) { return (size_t)n_pairs(n_in) * PAIR; }

/* Sub-panel p of W into dst (panel_bytes). */
static void build_panel(const kvl_weight *W, uint8_t *dst, int64_t p) {
    const int64_t nblk = W->n_in / 32, np2 = n_pairs(W->n_in);
    memset(dst, 0x80, panel_bytes(W->n_in)); /* padding rows and blocks: w = 0 */
    for (int64_t c = 0; c < np2; c++) memset(dst + c * PAIR + 1024, 0, 64); /* their scales: 0 */
    for (int l = 0; l < NR; l++) {
        const int64_t r = NR * p + l;
        if (r >= W->n_out) break;
        const kvl_block_q8_0 *blk = (const kvl_block_q8_0 *)((const uint8_t *)W->data + r * W->row_bytes);
        for (int64_t b = 0; b < nblk; b++) {
            uint8_t *pair = dst + (b / 2) * PAIR;
            uint8_t *q = pair + (b % 2) * 512;
            for (int k4 = 0; k4 < 8; k4++) {
                uint32_t v;
                memcpy(&v, blk[b].qs + 4 * k4, 4);
                v ^= 0x80808080u; /* w + 128 as u8 */
                memcpy(q + (k4 * NR + l) * 4, &v, 4);
            }
            memcpy(pair + 1024 + (b % 2) * 32 + 2 * l, &blk[b].d, 2);
        }
    }
}

const uint8_t *kvl_mm_q8p_get(const kvl_weight *W) {
    if (W->type != KVL_TYPE_Q8_0 || W->n_in <= 0 || W->n_out <= 0 || W->n_in % 32) return NULL;
    return kvl_mm_prep_get(W, panel_bytes(W->n_in), (W->n_out + NR - 1) / NR, build_panel);
}

/* ---- activations ---- */
static size_t tile_bytes(int64_t n_in) { return (size_t)n_in * MT + (size_t)n_in / 32 * MT * 8; }

size_t kvl_mm_q8p_xbytes(int64_t n_in, int n_tok) { return tile_bytes(n_in) * (size_t)((n_tok + MT - 1) / MT) + 64; }

void kvl_mm_q8p_pack_x(void *Xbuf, const float *x, int64_t n_in, int n_tok, int g, void *tmp) {
    uint8_t *tile = (uint8_t *)Xbuf + tile_bytes(n_in) * g;
    int32_t *X = (int32_t *)tile;
    float *Xd = (float *)(tile + (size_t)n_in * MT);
    int32_t *Xc = (int32_t *)(Xd + n_in / 32 * MT);
    int8_t *q = tmp;
    float *d = (float *)((uint8_t *)tmp + n_in);
    for (int i = 0; i < MT; i++) {
        const int t = g * MT + i;
        if (t < n_tok) {
            kvl_mm_quantize_x(x + (int64_t)t * n_in, n_in, q, d);
        } else { /* padding token */
            memset(q, 0, (size_t)n_in);
            memset(d, 0, (size_t)n_in / 32 * sizeof(float));
        }
        for (int64_t k4 = 0; k4 < n_in / 4; k4++) memcpy(&X[k4 * MT + i], q + 4 * k4, 4);
        for (int64_t b = 0; b < n_in / 32; b++) {
            int32_t s = 0;
            for (int j = 0; j < 32; j++) s += q[32 * b + j];
            Xd[b * MT + i] = d[b];
            Xc[b * MT + i] = -128 * s;
        }
    }
}

/* ---- kernel: MR tokens (<= MT) of one tile against NP sub-panels side by side ---- */
static inline __attribute__((always_inline)) void ukernel(int64_t nblk, const int32_t *X, const float *Xd,
                                                          const int32_t *Xc, const uint8_t *P, size_t pstride,
                                                          float *C, int64_t ldc, int nr, const int MR, const int NP) {
    __m512 f[4][4];
#pragma GCC unroll 4
    for (int t = 0; t < MR; t++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) f[t][j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *pb = P + (b / 2) * PAIR + (b % 2) * 512;
        __m512i s[4][4];
#pragma GCC unroll 4
        for (int t = 0; t < MR; t++) {
            const __m512i c = _mm512_set1_epi32(Xc[b * MT + t]);
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++) s[t][j] = c;
        }
#pragma GCC unroll 8
        for (int k4 = 0; k4 < 8; k4++) {
            __m512i w[4];
#pragma GCC unroll 4
            for (int j = 0; j < NP; j++) {
                if (MR <= KVL_Q8P_PREFETCH_MR) _mm_prefetch((const char *)(pb + j * pstride + k4 * 64) + KVL_Q8P_PREFETCH, _MM_HINT_T0);
                w[j] = _mm512_load_si512(pb + j * pstride + k4 * 64);
            }
            const int32_t *xk = X + (b * 8 + k4) * MT;
#pragma GCC unroll 4
            for (int t = 0; t < MR; t++) {
                const __m512i xb = _mm512_set1_epi32(xk[t]);
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++) s[t][j] = _mm512_dpbusd_epi32(s[t][j], w[j], xb);
            }
        }
        const uint8_t *pd = P + (b / 2) * PAIR + 1024 + (b % 2) * 32;
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) {
            const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(pd + j * pstride)));
#pragma GCC unroll 4
            for (int t = 0; t < MR; t++)
                f[t][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t][j]), _mm512_mul_ps(d, _mm512_set1_ps(Xd[b * MT + t])),
                                          f[t][j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) {
        const int left = nr - NR * j; /* rows of sub-panel j that exist in W */
        const __mmask16 m = left >= NR ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 4
        for (int t = 0; t < MR; t++) _mm512_mask_storeu_ps(C + t * ldc + NR * j, m, f[t][j]);
    }
}

/* One instantiation per (MR, NP) used: MR 1-2 with up to 4 sub-panels (8-16 accumulators: enough independent
 * vpdpbusd chains for a single decode row), MR 3-4 with up to 2. */
#define UK(MR_, NP_) ukernel(nblk, X, Xd, Xc, P, pb, C, ldc, nr, MR_, NP_)
static void run_tile(int64_t nblk, const int32_t *X, const float *Xd, const int32_t *Xc, const uint8_t *P, size_t pb,
                     float *C, int64_t ldc, int nr, int mr, int np) {
    switch (mr * 8 + np) {
    case 1 * 8 + 1: UK(1, 1); break;
    case 1 * 8 + 2: UK(1, 2); break;
    case 1 * 8 + 3: UK(1, 3); break;
    case 1 * 8 + 4: UK(1, 4); break;
    case 2 * 8 + 1: UK(2, 1); break;
    case 2 * 8 + 2: UK(2, 2); break;
    case 2 * 8 + 3: UK(2, 3); break;
    case 2 * 8 + 4: UK(2, 4); break;
    case 3 * 8 + 1: UK(3, 1); break;
    case 3 * 8 + 2: UK(3, 2); break;
    case 4 * 8 + 1: UK(4, 1); break;
    default: UK(4, 2); break;
    }
}
#undef UK

void kvl_mm_q8p_gemm(float *y, const void *Xbuf, const kvl_weight *W, const uint8_t *prep, int n_tok, int64_t o0,
                     int64_t o1) {
    const int64_t n_in = W->n_in, nblk = n_in / 32, n_out = W->n_out;
    const size_t pb = panel_bytes(n_in);
    const int n_groups = (n_tok + MT - 1) / MT;
    for (int g = 0; g < n_groups; g++) {
        const uint8_t *tile = (const uint8_t *)Xbuf + tile_bytes(n_in) * g;
        const int32_t *X = (const int32_t *)tile;
        const float *Xd = (const float *)(tile + (size_t)n_in * MT);
        const int32_t *Xc = (const int32_t *)(Xd + nblk * MT);
        const int mr = n_tok - g * MT < MT ? n_tok - g * MT : MT;
        const int max_np = mr <= 2 ? 4 : 2;
        for (int64_t o = o0; o < o1;) {
            const int64_t sp = o / NR;
            const int nr = (int)(o1 - o);
            int np = (nr + NR - 1) / NR;
            np = np < max_np ? np : max_np;
            run_tile(nblk, X, Xd, Xc, prep + pb * sp, pb, y + (int64_t)g * MT * n_out + o, n_out, nr, mr, np);
            o += (int64_t)np * NR;
        }
    }
}

#endif
