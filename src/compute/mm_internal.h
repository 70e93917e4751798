/* mm_internal.h - shared pieces of the CPU matmul kernels (matmul.c dispatches to mm_*.c).
 *
 * Paths:  n_tok <= KVL_MM_GEMV_MAX_TOK: stream each weight row once, decode in registers, dot with every token
 *         (mm_gemv_float.c: f32 activations; mm_gemv_quant.c: activations quantized to int8 per 32 values).
 *         larger n_tok: blocked GEMM on f32 panels decoded once per k-block (mm_gemm.c, decoders in mm_decode.c).
 * KVL_MM_AVX2 selects the AVX2/FMA/F16C code at compile time; without it every file has a portable scalar path. */
#ifndef KVL_MM_INTERNAL_H
#define KVL_MM_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "compute/matmul.h"
#include "compute/quant.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define KVL_MM_AVX2 1
#include <immintrin.h>
/* On CPUs with AVX-512 the prefill kernels use 512-bit registers (twice the FMA width, 32 registers for larger
 * tiles); the Q8_0 prefill uses VNNI (vpdpbusd: 64 int8 multiply-adds into int32, no int16 saturation). The
 * decode kernels stay AVX2: they wait on memory, not on arithmetic. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define KVL_MM_AVX512 1
#if defined(__AVX512VNNI__)
#define KVL_MM_VNNI512 1
#endif
/* AVX-512 BF16 (vdpbf16ps: 16 lanes x a pair of bf16 products added to f32) for the BF16-weight prefill. */
#if defined(__AVX512BF16__)
#define KVL_MM_BF16DOT 1
/* AMX tiles with bf16 (Sapphire Rapids and later): tdpbf16ps for the BF16 prefill (mm_gemm_amx.c) */
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
#define KVL_MM_AMX 1
#endif
#endif
#endif
#endif

/* Token counts up to this use the row-streaming (GEMV) path. */
#define KVL_MM_GEMV_MAX_TOK 3

/* IEEE half -> float, exact (subnormals, Inf and NaN included). Kept inline here: the kernels need it per block. */
static inline float kvl_mm_h2f(uint16_t h) {
#ifdef KVL_MM_AVX2
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: value = man * 2^-24, exactly representable as a float */
        float f = (float)man * (1.0f / 16777216.0f);
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

static inline float kvl_mm_bf2f(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K block. */
static inline void kvl_mm_q4k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

#ifdef KVL_MM_AVX2
/* The 128 six-bit Q6_K quants of one half super-block (0..63, offset not removed) as 4 chunks of 32 bytes:
 * chunk c is the low nibble (c < 2) or high nibble of ql[32 (c % 2) + l] with bits 2c..2c+1 of qh[l] on top. */
static inline void kvl_mm_q6k_unpack128(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
    const __m256i qa = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i qb = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i hh = _mm256_loadu_si256((const __m256i *)qh);
    q[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(hh, m2), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 2), m2), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 4), m2), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hh, 6), m2), 4));
}
#endif

#ifdef KVL_MM_AVX2
/* acc + the 8 int32 sums of 4 adjacent u8 * s8 products. One VNNI instruction where the CPU has it, else maddubs
 * (int16 pairs) and madd: exact as long as a pair cannot saturate int16, which holds for every caller
 * (u <= 128 and |s| <= 127: 2 * 128 * 127 < 32768), so both forms give the same sums. */
static inline __m256i kvl_mm_dot4(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
#endif

/* Value k of a row of a float type (F32, F16, BF16; any other type reads f32). */
static inline float kvl_mm_load1(int type, const void *row, int64_t k) {
    if (type == KVL_TYPE_F16) return kvl_mm_h2f(((const uint16_t *)row)[k]);
    if (type == KVL_TYPE_BF16) return kvl_mm_bf2f(((const uint16_t *)row)[k]);
    return ((const float *)row)[k];
}
#ifdef KVL_MM_AVX2
/* Values k..k+7 of such a row as f32. */
static inline __m256 kvl_mm_load8(int type, const void *row, int64_t k) {
    if (type != KVL_TYPE_F16 && type != KVL_TYPE_BF16) return _mm256_loadu_ps((const float *)row + k);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
    if (type == KVL_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
#endif

/* Is `type` one of the weight types the kernels handle? */
int kvl_mm_type_ok(int type);

/* Decode elements [k0, k0 + n) of one weight row to f32. k0 and n are multiples of the type's block size. */
void kvl_mm_decode(int type, const void *row, int64_t k0, int64_t n, float *dst);

/* Activations of one token quantized to int8 per 32 values: x ~= d[b] * q[32 b + i], with |q| <= 127 and
 * d[b] = max|x| / 127 of block b; s16[j] = sum of the q of the j-th group of 16 (for the min / offset terms). */
typedef struct {
    int8_t *q;      /* n_in */
    float *d;       /* n_in / 32 */
    int32_t *s16;   /* n_in / 16 */
    float *ds16;    /* n_in / 16: d of the group's block times s16, for the vectorised K-quant terms */
    float *ds32;    /* n_in / 32: ds16[2b] + ds16[2b + 1] */
} kvl_mm_qx;

/* Quantize n (a multiple of 32) activations: d[b] = max|x_b| / 127, q = round-to-nearest-even(x / d). */
void kvl_mm_quantize_x(const float *x, int64_t n, int8_t *q, float *d);

/* Bytes kvl_mm_qx_init needs for n_tok tokens of n_in (a multiple of 32) values. */
size_t kvl_mm_qx_bytes(int64_t n_in, int n_tok);
/* Lay out n_tok kvl_mm_qx in buf (kvl_mm_qx_bytes long, 32-byte aligned) and quantize x[n_tok][n_in] into them;
 * s16, ds16 and ds32 are filled only when `sums` is set (the K-quants need them, Q8_0 does not). */
void kvl_mm_qx_init(kvl_mm_qx *qx, void *buf, const float *x, int64_t n_in, int n_tok, int sums);

/* Row-streaming kernels for rows [o0, o1): y[t][o] for t < n_tok (n_tok <= KVL_MM_GEMV_MAX_TOK). */
void kvl_mm_gemv_float(float *y, const float *x, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1);
#ifdef KVL_MM_AVX2
/* BF16 rows are widened by interleaving zeros, which yields each 16 values in the order 0-3, 8-11, 4-7, 12-15;
 * kvl_mm_gemv_float expects x (each token's n values) permuted the same way by this function. */
void kvl_mm_bf16_order(float *xp, const float *x, int64_t n);
#endif
void kvl_mm_gemv_quant(float *y, const kvl_mm_qx *qx, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1);

/* Blocked GEMM. The activations are first packed (kvl_mm_gemm_pack_x for every token group g of 6, in any
 * thread) into Xp of kvl_mm_gemm_xpack_bytes (0: the build needs no packing, Xp may be NULL); then
 * kvl_mm_gemm computes rows [o0, o1) for all tokens with kvl_mm_gemm_scratch_bytes() of 32-byte aligned scratch
 * per thread. */
#define KVL_MM_GEMM_GROUP 6  /* tokens per packed tile */
#define KVL_MM_GEMM_ROWS 64  /* weight rows per panel; kvl_mm_gemm ranges should be multiples */
size_t kvl_mm_gemm_xpack_bytes(int64_t n_in, int n_tok);
void kvl_mm_gemm_pack_x(float *Xp, const float *x, int64_t n_in, int n_tok, int g);
size_t kvl_mm_gemm_scratch_bytes(void);
void kvl_mm_gemm(float *y, const float *x, float *Xp, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1,
                 void *scratch);

/* BF16-weight prefill on the bf16 dot product (KVL_MM_BF16DOT builds; mm_gemm.c). vdpbf16ps multiplies bf16 by
 * bf16, so the activations are rounded to bf16 first:
 *   KVL_MM_BF16_SPLIT: x = hi + lo with hi = bf16(x), lo = bf16(x - hi), two products per pair; |x - hi - lo| <=
 *                      2^-16 |x|, the product error is at most 2^-16 sum|w x| (plus f32 accumulation);
 *   KVL_MM_BF16_ROUND: x rounded to bf16 once (as llama.cpp does), at most 2^-8 sum|w x|: twice the
 *                      arithmetic rate of SPLIT, but outside the 1e-4 parity bound with transformers; opt-in;
 *   KVL_MM_BF16_OFF:   the f32 GEMM (weights widened to f32, f32 activations).
 * vdpbf16ps also treats bf16 subnormals (|v| < 1.2e-38) as zero. The environment variable KVL_BF16_DOT
 * (off | split | round) picks the mode; unset, it is SPLIT on AMD CPUs (Zen 4: one vdpbf16ps does twice the
 * multiply-adds of one FMA) and OFF elsewhere (the Intel Xeon measured here issues vdpbf16ps at half the rate of
 * an FMA: 16 multiply-adds per cycle against 32). Builds without AVX-512 BF16 always use OFF. */
enum { KVL_MM_BF16_OFF = 0, KVL_MM_BF16_SPLIT = 1, KVL_MM_BF16_ROUND = 2 };
/* Engine bit of the mode: AMX tiles (KVL_MM_AMX builds where the kernel grants the tile state) instead of
 * vdpbf16ps. With AMX the default is SPLIT on every CPU (tdpbf16ps does 16x the multiply-adds per cycle of the
 * FMAs even with two passes); KVL_AMX=0 in the environment turns AMX off. */
#define KVL_MM_BF16_AMX 4
int kvl_mm_bf16_mode(void);
/* Force a mode (tests, benchmarks), optionally | KVL_MM_BF16_AMX (dropped where AMX is unavailable); -1 returns
 * to the default above. Call outside parallel regions. */
void kvl_mm_bf16_mode_set(int mode);
#ifdef KVL_MM_AVX512
/* BF16 weights prepared for the f32 GEMM (mm_gemm.c; used while the bf16 prefill mode is OFF): 64-row panels of
 * bf16 laid out so that two 64-byte loads and four unpacks give the four f32 sub-panel rows of one k. The weights
 * reach the micro-kernel as the same f32 values as from the per-call packing, so the results are bit for bit
 * those of kvl_mm_gemm. kvl_mm_bfp_get: W->prep (built on first use) or NULL; kvl_mm_bfp_gemm: rows [o0, o1) (o0 a
 * multiple of 64), activations packed by kvl_mm_gemm_pack_x. */
const uint16_t *kvl_mm_bfp_get(const kvl_weight *W);
void kvl_mm_bfp_gemm(float *y, float *Xp, const kvl_weight *W, const uint16_t *prep, int n_tok, int64_t o0, int64_t o1);
#endif
#ifdef KVL_MM_BF16DOT
/* Activations for the bf16 GEMM: token group g of KVL_MM_GEMM_GROUP packed as bf16 pairs (hi, and lo in SPLIT)
 * into Xp of kvl_mm_gemm_xpack_bytes; then kvl_mm_bf16gemm computes rows [o0, o1) (n_in even) with
 * kvl_mm_gemm_scratch_bytes() of scratch. */
void kvl_mm_bf16gemm_pack_x(uint32_t *Xp, const float *x, int64_t n_in, int n_tok, int g, int mode);
void kvl_mm_bf16gemm(float *y, const uint32_t *Xp, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1,
                     int mode, void *scratch);
#endif
#ifdef KVL_MM_AMX
/* AMX: kvl_mm_amx_enable asks Linux for the tile state (once per process; 0 = refused). The activations of token
 * t (every t below n_tok rounded up to 32, padding tokens zero) are written by kvl_mm_amx_pack_x into Xa of
 * kvl_mm_amx_xbytes; kvl_mm_amx_gemm computes rows [o0, o1) (n_in a multiple of 32) with
 * kvl_mm_amx_scratch_bytes(n_in) of scratch. */
int kvl_mm_amx_enable(void);
size_t kvl_mm_amx_xbytes(int64_t n_in, int n_tok, int mode);
void kvl_mm_amx_pack_x(uint16_t *Xa, const float *x, int64_t n_in, int n_tok, int t, int mode);
size_t kvl_mm_amx_scratch_bytes(int64_t n_in);
void kvl_mm_amx_gemm(float *y, const uint16_t *Xa, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1, int mode,
                     void *scratch);
#endif

#ifdef KVL_MM_AVX2
/* Q8_0 prefill in int8 (mm_gemm_q8.c): kvl_mm_q8gemm_pack_x quantizes and packs token group g (of
 * KVL_MM_Q8GEMM_GROUP) into Xbuf (kvl_mm_q8gemm_xbytes), using 5 * n_in bytes at `tmp` (the tail of a
 * kvl_mm_q8gemm_scratch_bytes scratch); kvl_mm_q8gemm then computes rows [o0, o1) with that scratch. */
#define KVL_MM_Q8GEMM_GROUP 4
size_t kvl_mm_q8gemm_xbytes(int64_t n_in, int n_tok);
size_t kvl_mm_q8gemm_scratch_bytes(int64_t n_in);
void kvl_mm_q8gemm_pack_x(void *Xbuf, const float *x, int64_t n_in, int n_tok, int g, void *tmp);
void kvl_mm_q8gemm(float *y, const void *Xbuf, const kvl_weight *W, int n_tok, int64_t o0, int64_t o1,
                   void *scratch);
#endif

/* Prepared layouts (mm_prep.c). kvl_mm_prep_enabled: KVL_REPACK is not 0 and the build has AVX-512;
 * kvl_mm_prep_set(0/1) forces it off/on (tests, benchmarks; -1: back to the environment). kvl_mm_prep_get returns
 * W->prep, building it first if needed (n_parts parts of part_bytes, part i written by build(W, dst, i), in
 * parallel), or NULL (turned off, out of memory). */
const void *kvl_mm_prep_get(const kvl_weight *W, size_t part_bytes, int64_t n_parts,
                            void (*build)(const kvl_weight *W, uint8_t *dst, int64_t part));
/* Q8_0 (mm_q8_prep.c, AVX-512 VNNI builds): kvl_mm_q8p_get returns
 * W's prepared copy, building it on first use (thread-safe, parallel inside: call outside parallel regions), or
 * NULL where there is none (other types, turned off, out of memory). Then kvl_mm_q8p_pack_x quantizes and packs
 * token group g (of KVL_MM_Q8P_GROUP) into Xbuf (kvl_mm_q8p_xbytes) with 5 * n_in + 64 bytes at tmp, and
 * kvl_mm_q8p_gemm computes rows [o0, o1) (o0 a multiple of 16) for every token from the prepared copy. */
#define KVL_MM_Q8P_GROUP 4
int kvl_mm_prep_enabled(void);
void kvl_mm_prep_set(int on);
const uint8_t *kvl_mm_q8p_get(const kvl_weight *W);
#ifdef KVL_MM_VNNI512
size_t kvl_mm_q8p_xbytes(int64_t n_in, int n_tok);
void kvl_mm_q8p_pack_x(void *Xbuf, const float *x, int64_t n_in, int n_tok, int g, void *tmp);
void kvl_mm_q8p_gemm(float *y, const void *Xbuf, const kvl_weight *W, const uint8_t *prep, int n_tok, int64_t o0,
                     int64_t o1);
#endif

/* Does kvl_matmul quantize the activations to int8 for this type and token count? (What the error bound in
 * mm_gemv_quant.c applies to; otherwise the product is f32 throughout.) */
static inline int kvl_mm_int8_activations(int type, int n_tok) {
    if (type == KVL_TYPE_Q8_0) {
#ifdef KVL_MM_AVX2
        return 1;
#else
        return n_tok <= KVL_MM_GEMV_MAX_TOK;
#endif
    }
    return (type == KVL_TYPE_Q4_K || type == KVL_TYPE_Q6_K || kvl_type_is_legacy(type)) && n_tok <= KVL_MM_GEMV_MAX_TOK;
}

#endif
