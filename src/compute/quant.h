/* quant.h - tensor element formats: sizes, scalar conversions, reference (portable) block decoders and the
 * quantizers the converter needs. Layouts follow ggml's definitions:
 *   Q8_0: 32 values = f16 scale d + 32 x int8;                       x = d * q
 *   Q4_0 / Q4_1 / Q5_0 / Q5_1: 32 values = f16 d (Q*_1: and f16 m), Q5: 32 high bits, 16 bytes of nibbles (value j
 *   in the low nibble of byte j, value j + 16 in the high nibble; Q5 adds bit j of qh as bit 4);
 *                                                                    x = d * (q - 8) | d * q + m | d * (q - 16) | d * q + m
 *   Q4_K: 256 values = f16 d, f16 dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles
 *   Q6_K: 256 values = 128 bytes low nibbles, 64 bytes high 2 bits, 16 x int8 scales, f16 d;  x = d * sc * (q - 32)
 * Fast kernels live in matmul.c; these are the definitions they are tested against. */
#ifndef KVL_QUANT_H
#define KVL_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kvlens.h"

#define KVL_QK8_0 32
#define KVL_QK_K 256

typedef struct {
    uint16_t d;            /* f16 scale */
    int8_t qs[KVL_QK8_0];
} kvl_block_q8_0;          /* 34 bytes */

typedef struct {
    uint16_t d;
    uint8_t qs[16];
} kvl_block_q4_0;          /* 18 bytes */

typedef struct {
    uint16_t d, m;
    uint8_t qs[16];
} kvl_block_q4_1;          /* 20 bytes */

typedef struct {
    uint16_t d;
    uint8_t qh[4];         /* bit j: bit 4 of value j */
    uint8_t qs[16];
} kvl_block_q5_0;          /* 22 bytes */

typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} kvl_block_q5_1;          /* 24 bytes */

typedef struct {
    uint16_t d;            /* f16 super-block scale for the scales */
    uint16_t dmin;         /* f16 super-block scale for the mins */
    uint8_t scales[12];    /* 8 x (6-bit scale, 6-bit min), packed */
    uint8_t qs[KVL_QK_K / 2];
} kvl_block_q4_K;          /* 144 bytes */

typedef struct {
    uint8_t ql[KVL_QK_K / 2];     /* lower 4 bits */
    uint8_t qh[KVL_QK_K / 4];     /* upper 2 bits */
    int8_t scales[KVL_QK_K / 16]; /* 8-bit scales of 16 sub-blocks of 16 */
    uint16_t d;                   /* f16 super-block scale */
} kvl_block_q6_K;                 /* 210 bytes */

/* Is `type` a tensor type kvlens can compute with? */
int kvl_type_supported(int type);
/* Elements per block (1 for float types) and bytes per block; 0 for unknown types. */
int kvl_type_block_elems(int type);
size_t kvl_type_block_bytes(int type);
/* Bytes of a row of n elements (n must be a multiple of the block size; returns 0 otherwise). */
size_t kvl_row_bytes(int type, int64_t n);

/* Scalar conversions (round to nearest even; NaN/Inf preserved). */
float kvl_f16_to_f32(uint16_t h);
uint16_t kvl_f32_to_f16(float f);
float kvl_bf16_to_f32(uint16_t h);
uint16_t kvl_f32_to_bf16(float f);
/* The portable f16 conversions (used when F16C is absent); bit-identical to the hardware ones. */
float kvl_f16_to_f32_ref(uint16_t h);
uint16_t kvl_f32_to_f16_ref(float f);

/* Q4_0/Q4_1/Q5_0/Q5_1 ("legacy" 32-value blocks): is `type` one of them? */
int kvl_type_is_legacy(int type);
/* Where a legacy block keeps its fields (the structs above): f16 d at byte 0, f16 m at m_at (-1: none), the 32
 * high bits at qh_at (-1: none), the 16 nibble bytes at qs_at; `centre` is subtracted from the code (8, 16 or 0). */
typedef struct {
    int m_at, qh_at, qs_at, centre;
} kvl_legacy_layout;
static inline kvl_legacy_layout kvl_legacy_layout_of(int type) {
    const int has_m = type == KVL_TYPE_Q4_1 || type == KVL_TYPE_Q5_1, q5 = type == KVL_TYPE_Q5_0 || type == KVL_TYPE_Q5_1;
    const kvl_legacy_layout l = {has_m ? 2 : -1, q5 ? 2 + 2 * has_m : -1, 2 + 2 * has_m + 4 * q5,
                                 type == KVL_TYPE_Q4_0 ? 8 : type == KVL_TYPE_Q5_0 ? 16 : 0};
    return l;
}
/* One legacy block as 32 unsigned codes q[j] (0..15 or 0..31) with x[j] = d * q[j] + m: for Q4_0 / Q5_0 the offset
 * is m = -8 d / -16 d. (The reference decoder computes d * (q - 8) as ggml does; this form serves the kernels.) */
void kvl_legacy_codes(int type, const void *block, uint8_t q[32], float *d, float *m);

/* Q4_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
void kvl_q4_K_scale_min(const uint8_t *scales, int j, int *sc, int *m);

/* Decode n elements (a multiple of the block size) of `type` from src into dst. Portable reference code. */
void kvl_dequant_row(int type, const void *src, float *dst, int64_t n);

/* Encode n floats into `type` (F32, F16, BF16, Q8_0 supported); returns bytes written, 0 if unsupported. */
size_t kvl_quantize_row(int type, const float *src, void *dst, int64_t n);

#endif
