/* BF16-weight prefill on AMX tiles (Intel Sapphire Rapids and later, KVL_MM_AMX builds).
 *
 * tdpbf16ps multiplies a 16 x 32 bf16 tile A by a 16 x 16-pair bf16 tile B into 16 x 16 f32 sums in one
 * instruction (8192 multiply-adds; the vdpbf16ps of these Xeons does 32 per cycle at best). Here A = 16 tokens x 32
 * input values of the bf16 activations (row-major, as kvl_mm_amx_pack_x writes them), B = 16 pairs of input
 * values x 16 weight rows (each 32-bit element the pair (w[2k], w[2k+1]) of one row; a 64-row panel is packed once
 * per call and kept in L2), C = 16 tokens x 16 weight rows, held in tile registers over the whole input width.
 * Tiles: C 0-3 (2 x 2: 32 tokens x 32 rows), A 4-5, B 6-7. The activations are rounded as in mm_internal.h's
 * KVL_MM_BF16_SPLIT (hi + lo, a second pass over A) or KVL_MM_BF16_ROUND. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall */
#endif
#include "compute/mm_internal.h"

#ifdef KVL_MM_AMX
#include <sys/syscall.h>
#include <unistd.h>

enum { TT = 16, TK = 32, BT = 32, MC = KVL_MM_GEMM_ROWS };

int kvl_mm_amx_enable(void) {
    /* Linux: a process asks for the AMX tile data state (XFEATURE_XTILEDATA = 18) with ARCH_REQ_XCOMP_PERM
     * (0x1023) before its first tile instruction; older kernels refuse, and then AMX is not used. */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

static int pad_tok(int n_tok) { return (n_tok + BT - 1) / BT * BT; }

size_t kvl_mm_amx_xbytes(int64_t n_in, int n_tok, int mode) {
    return (size_t)pad_tok(n_tok) * (size_t)n_in * 2 * (mode == KVL_MM_BF16_SPLIT ? 2 : 1);
}

void kvl_mm_amx_pack_x(uint16_t *Xa, const float *x, int64_t n_in, int n_tok, int t, int mode) {
    uint16_t *hi = Xa + (int64_t)t * n_in, *lo = Xa + ((int64_t)pad_tok(n_tok) + t) * n_in;
    for (int64_t k = 0; k < n_in; k += 16) {
        const int left = n_in - k < 16 ? (int)(n_in - k) : 16;
        const __mmask16 m = (__mmask16)((1u << left) - 1);
        const __m512 v = t < n_tok ? _mm512_maskz_loadu_ps(m, x + (int64_t)t * n_in + k) : _mm512_setzero_ps();
        const __m256bh h = _mm512_cvtneps_pbh(v);
        _mm256_mask_storeu_epi16(hi + k, m, (__m256i)h);
        if (mode == KVL_MM_BF16_SPLIT) {
            const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
            _mm256_mask_storeu_epi16(lo + k, m, (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(v, hf)));
        }
    }
}

size_t kvl_mm_amx_scratch_bytes(int64_t n_in) { return (size_t)MC * (size_t)n_in * 2 + TT * TT * sizeof(float); }

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* C tile -> y (tokens t0.., rows r0..), only the part that exists */
static void store_c(const float *tmp, float *y, int64_t n_out, int n_tok, int t0, int64_t r0, int64_t r1) {
    const int nt = n_tok - t0 < TT ? n_tok - t0 : TT, nr = r1 - r0 < TT ? (int)(r1 - r0) : TT;
    for (int i = 0; i < nt; i++) memcpy(y + (int64_t)(t0 + i) * n_out + r0, tmp + TT * i, (size_t)nr * sizeof(float));
}

void kvl_mm_amx_gemm(float *y, const uint16_t *Xa, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1, int mode,
                     void *scratch) {
    const int64_t n_in = W->n_in, n_out = W->n_out, n2 = n_in / 2, nsteps = n_in / TK;
    const int pad = pad_tok(n_tok), split = mode == KVL_MM_BF16_SPLIT;
    const uint16_t *Xlo = Xa + (int64_t)pad * n_in;
    const size_t xs = (size_t)n_in * 2; /* bytes between two tokens' rows of A */
    uint32_t *P = scratch;
    float *tmp = (float *)(P + MC * n2);
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.colsb[i] = 64, cfg.rows[i] = TT;
    _tile_loadconfig(&cfg);
    for (int64_t o = o0; o < o1; o += MC) {
        const int mc = (int)(o1 - o < MC ? o1 - o : MC), np = (mc + TT - 1) / TT;
        /* sub-panel p: [n2][16] pairs of rows o + 16p .. (missing rows zero) */
        for (int p = 0; p < np; p++) {
            uint32_t *Pp = P + (int64_t)p * TT * n2;
            for (int r = 0; r < TT; r++) {
                if (TT * p + r >= mc) {
                    for (int64_t k = 0; k < n2; k++) Pp[TT * k + r] = 0;
                    continue;
                }
                const uint8_t *row = (const uint8_t *)W->data + (o + TT * p + r) * W->row_bytes;
                for (int64_t k = 0; k < n2; k++) memcpy(Pp + TT * k + r, row + 4 * k, 4);
            }
        }
        for (int tb = 0; tb < n_tok; tb += BT) {
            for (int p = 0; p < np; p += 2) {
                const int two = p + 1 < np;
                const uint32_t *B0 = P + (int64_t)p * TT * n2, *B1 = B0 + TT * n2;
                const uint16_t *A0 = Xa + (int64_t)tb * n_in, *A1 = A0 + TT * n_in;
                const uint16_t *L0 = Xlo + (int64_t)tb * n_in, *L1 = L0 + TT * n_in;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int64_t s = 0; s < nsteps; s++) {
                    _tile_loadd(6, B0 + s * TT * TT, 64);
                    _tile_loadd(4, A0 + s * TK, xs);
                    _tile_loadd(5, A1 + s * TK, xs);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 5, 6);
                    if (two) {
                        _tile_loadd(7, B1 + s * TT * TT, 64);
                        _tile_dpbf16ps(2, 4, 7);
                        _tile_dpbf16ps(3, 5, 7);
                    }
                    if (split) {
                        _tile_loadd(4, L0 + s * TK, xs);
                        _tile_loadd(5, L1 + s * TK, xs);
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 5, 6);
                        if (two) {
                            _tile_dpbf16ps(2, 4, 7);
                            _tile_dpbf16ps(3, 5, 7);
                        }
                    }
                }
                const int64_t r0 = o + TT * p, r1 = o + mc;
                _tile_stored(0, tmp, 64);
                store_c(tmp, y, n_out, n_tok, tb, r0, r1);
                if (tb + TT < n_tok) {
                    _tile_stored(1, tmp, 64);
                    store_c(tmp, y, n_out, n_tok, tb + TT, r0, r1);
                }
                if (two) {
                    _tile_stored(2, tmp, 64);
                    store_c(tmp, y, n_out, n_tok, tb, r0 + TT, r1);
                    if (tb + TT < n_tok) {
                        _tile_stored(3, tmp, 64);
                        store_c(tmp, y, n_out, n_tok, tb + TT, r0 + TT, r1);
                    }
                }
            }
        }
    }
    _tile_release();
}
#endif
