/* quant.c - tensor element formats: the type table, f16/bf16 conversions, reference block decoders and the
 * quantizers used by the converter. Block layouts are ggml's (see quant.h). */
#include "compute/quant.h"

#include <math.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

typedef struct {
    const char *name;
    int blck;       /* elements per block */
    int bytes;      /* bytes per block */
    int supported;  /* kvlens can decode/compute it */
} type_info;

/* Indexed by the ggml/GGUF type number. Numbers that ggml retired (4, 5, 31-33, 36-38) stay unknown: files
 * containing them cannot be sized reliably. */
static const type_info TYPES[] = {
    [0] = {"f32", 1, 4, 1},
    [1] = {"f16", 1, 2, 1},
    [2] = {"q4_0", 32, 18, 1},
    [3] = {"q4_1", 32, 20, 1},
    [6] = {"q5_0", 32, 22, 1},
    [7] = {"q5_1", 32, 24, 1},
    [8] = {"q8_0", 32, 34, 1},
    [9] = {"q8_1", 32, 36, 0},
    [10] = {"q2_K", 256, 84, 0},
    [11] = {"q3_K", 256, 110, 0},
    [12] = {"q4_K", 256, 144, 1},
    [13] = {"q5_K", 256, 176, 0},
    [14] = {"q6_K", 256, 210, 1},
    [15] = {"q8_K", 256, 292, 0},
    [16] = {"iq2_xxs", 256, 66, 0},
    [17] = {"iq2_xs", 256, 74, 0},
    [18] = {"iq3_xxs", 256, 98, 0},
    [19] = {"iq1_s", 256, 50, 0},
    [20] = {"iq4_nl", 32, 18, 0},
    [21] = {"iq3_s", 256, 110, 0},
    [22] = {"iq2_s", 256, 82, 0},
    [23] = {"iq4_xs", 256, 136, 0},
    [24] = {"i8", 1, 1, 0},
    [25] = {"i16", 1, 2, 0},
    [26] = {"i32", 1, 4, 0},
    [27] = {"i64", 1, 8, 0},
    [28] = {"f64", 1, 8, 0},
    [29] = {"iq1_m", 256, 56, 0},
    [30] = {"bf16", 1, 2, 1},
    [34] = {"tq1_0", 256, 54, 0},
    [35] = {"tq2_0", 256, 66, 0},
    [39] = {"mxfp4", 32, 17, 0},
};
#define N_TYPES ((int)(sizeof TYPES / sizeof TYPES[0]))

_Static_assert(sizeof(kvl_block_q4_0) == 18, "q4_0 block layout");
_Static_assert(sizeof(kvl_block_q4_1) == 20, "q4_1 block layout");
_Static_assert(sizeof(kvl_block_q5_0) == 22, "q5_0 block layout");
_Static_assert(sizeof(kvl_block_q5_1) == 24, "q5_1 block layout");
_Static_assert(sizeof(kvl_block_q8_0) == 34, "q8_0 block layout");
_Static_assert(sizeof(kvl_block_q4_K) == 144, "q4_K block layout");
_Static_assert(sizeof(kvl_block_q6_K) == 210, "q6_K block layout");

static const type_info *info(int type) {
    if (type < 0 || type >= N_TYPES || !TYPES[type].name) return NULL;
    return &TYPES[type];
}

const char *kvl_type_name(int type) {
    const type_info *t = info(type);
    return t ? t->name : NULL;
}
int kvl_type_supported(int type) {
    const type_info *t = info(type);
    return t && t->supported;
}
int kvl_type_block_elems(int type) {
    const type_info *t = info(type);
    return t ? t->blck : 0;
}
size_t kvl_type_block_bytes(int type) {
    const type_info *t = info(type);
    return t ? (size_t)t->bytes : 0;
}

size_t kvl_row_bytes(int type, int64_t n) {
    const type_info *t = info(type);
    if (!t || n < 0 || n % t->blck) return 0;
    uint64_t nb = (uint64_t)(n / t->blck);
    if (nb > SIZE_MAX / (uint64_t)t->bytes) return 0;
    return (size_t)(nb * (uint64_t)t->bytes);
}

/* ---------------------------------------------------------------------------------------------------------
 * Scalar conversions. */
static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Portable versions; they match F16C bit for bit (NaNs come out quiet, payload kept). */
static float f16_to_f32_portable(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (mant ? 0x400000 | (mant << 13) : 0));
    if (exp == 0) {
        if (!mant) return bits_f32(sign);
        /* subnormal: renormalise (value = mant * 2^-24) */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400));
        return bits_f32(sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13));
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static uint16_t f32_to_f16_portable(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffff;
    if (x >= 0x7f800000) /* inf, nan (quieted, top payload bits kept) */
        return sign | 0x7c00 | (x > 0x7f800000 ? 0x200 | ((x >> 13) & 0x3ff) : 0);
    if (x >= 0x47800000) return sign | 0x7c00; /* >= 2^16: overflow */
    uint32_t e = x >> 23;
    if (e < 113) { /* below the smallest normal half: subnormal result in units of 2^-24 */
        if (e < 102) return sign; /* < 2^-25: rounds to zero */
        uint32_t m = (x & 0x7fffff) | 0x800000, s = 126 - e;
        uint32_t r = m >> s, rest = m & ((1u << s) - 1), half = 1u << (s - 1);
        if (rest > half || (rest == half && (r & 1))) r++;
        return sign | (uint16_t)r; /* r == 0x400 is the smallest normal, which is right */
    }
    uint32_t h = ((e - 112) << 10) | ((x >> 13) & 0x3ff), rest = x & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* a carry may reach the exponent / inf: correct */
    return sign | (uint16_t)h;
}

float kvl_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return f16_to_f32_portable(h);
#endif
}

uint16_t kvl_f32_to_f16(float f) {
#if defined(__F16C__)
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    return f32_to_f16_portable(f);
#endif
}

float kvl_f16_to_f32_ref(uint16_t h) { return f16_to_f32_portable(h); }
uint16_t kvl_f32_to_f16_ref(float f) { return f32_to_f16_portable(f); }

float kvl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t kvl_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN, never rounds to inf */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---------------------------------------------------------------------------------------------------------
 * Reference decoders. */
static void dequant_q8_0(const kvl_block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kvl_f16_to_f32(b[i].d);
        for (int j = 0; j < KVL_QK8_0; j++) y[j] = d * b[i].qs[j];
        y += KVL_QK8_0;
    }
}

int kvl_type_is_legacy(int type) {
    return type == KVL_TYPE_Q4_0 || type == KVL_TYPE_Q4_1 || type == KVL_TYPE_Q5_0 || type == KVL_TYPE_Q5_1;
}

void kvl_legacy_codes(int type, const void *block, uint8_t q[32], float *d, float *m) {
    const kvl_legacy_layout l = kvl_legacy_layout_of(type);
    const uint8_t *b = block, *qs = b + l.qs_at;
    uint16_t h16;
    memcpy(&h16, b, 2);
    *d = kvl_f16_to_f32(h16);
    if (l.m_at >= 0) memcpy(&h16, b + l.m_at, 2);
    *m = l.m_at >= 0 ? kvl_f16_to_f32(h16) : -(float)l.centre * *d;
    uint32_t h = 0;
    if (l.qh_at >= 0) memcpy(&h, b + l.qh_at, 4); /* little-endian, as in the file */
    for (int j = 0; j < 16; j++) {
        q[j] = (uint8_t)((qs[j] & 0x0f) | ((h >> j) & 1) << 4);
        q[j + 16] = (uint8_t)((qs[j] >> 4) | ((h >> (j + 16)) & 1) << 4);
    }
}

/* ggml's formulas: Q4_0 / Q5_0 subtract the centre from the integer code before scaling (one rounding). */
static void dequant_legacy(int type, const uint8_t *src, float *y, int64_t nb) {
    const size_t bytes = kvl_type_block_bytes(type);
    const int off = kvl_legacy_layout_of(type).centre;
    for (int64_t i = 0; i < nb; i++, src += bytes, y += 32) {
        uint8_t q[32];
        float d, m;
        kvl_legacy_codes(type, src, q, &d, &m);
        for (int j = 0; j < 32; j++) y[j] = off ? d * (float)(q[j] - off) : d * q[j] + m;
    }
}

/* Q4_K sub-block j (0..7) scale and min: 6 bits each. j < 4: low 6 bits of bytes j and j+4. j >= 4: low/high
 * nibble of byte j+4, plus the top 2 bits of bytes j-4 (scale) and j (min) as bits 4..5. */
void kvl_q4_K_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Sub-blocks 2k and 2k+1 share qs[32k..32k+32): low nibbles are sub-block 2k, high nibbles 2k+1. */
static void dequant_q4_K(const kvl_block_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kvl_f16_to_f32(b[i].d), dmin = kvl_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int k = 0; k < 4; k++) {
            int sc0, m0, sc1, m1;
            kvl_q4_K_scale_min(b[i].scales, 2 * k, &sc0, &m0);
            kvl_q4_K_scale_min(b[i].scales, 2 * k + 1, &sc1, &m1);
            const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
            for (int l = 0; l < 32; l++) y[l] = d0 * (q[l] & 0x0f) - o0;
            for (int l = 0; l < 32; l++) y[32 + l] = d1 * (q[l] >> 4) - o1;
            y += 64;
            q += 32;
        }
    }
}

/* Each half of 128 values uses 64 ql bytes, 32 qh bytes and 8 scales. Value l + 32*quad (l < 32) of the half
 * takes its low 4 bits from ql[l + 32*(quad&1)] (low nibble for quad < 2, high nibble otherwise) and its high 2
 * bits from qh[l] bits 2*quad..2*quad+1; its scale is sc[2*quad + l/16]. */
static void dequant_q6_K(const kvl_block_q6_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kvl_f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const int8_t *sc = b[i].scales + 8 * h;
            for (int quad = 0; quad < 4; quad++) {
                const uint8_t *lo = ql + 32 * (quad & 1);
                const int shift = (quad >> 1) * 4;
                for (int l = 0; l < 32; l++) {
                    int q = ((lo[l] >> shift) & 0x0f) | (((qh[l] >> (2 * quad)) & 3) << 4);
                    y[32 * quad + l] = d * (float)sc[2 * quad + l / 16] * (float)(q - 32);
                }
            }
            y += 128;
        }
    }
}

void kvl_dequant_row(int type, const void *src, float *dst, int64_t n) {
    const int blck = kvl_type_block_elems(type);
    if (n <= 0) return;
    if (!kvl_type_supported(type) || n % blck) {
        memset(dst, 0, (size_t)n * sizeof *dst); /* callers check support first; never leave garbage */
        return;
    }
    const uint16_t *h = src;
    switch (type) {
    case KVL_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof *dst); break;
    case KVL_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = kvl_f16_to_f32(h[i]);
        break;
    case KVL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = kvl_bf16_to_f32(h[i]);
        break;
    case KVL_TYPE_Q8_0: dequant_q8_0(src, dst, n / blck); break;
    case KVL_TYPE_Q4_0: case KVL_TYPE_Q4_1: case KVL_TYPE_Q5_0: case KVL_TYPE_Q5_1:
        dequant_legacy(type, src, dst, n / blck);
        break;
    case KVL_TYPE_Q4_K: dequant_q4_K(src, dst, n / blck); break;
    case KVL_TYPE_Q6_K: dequant_q6_K(src, dst, n / blck); break;
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Quantizers. Q8_0 follows the reference converter: d = max|x| / 127 in f32, q = round-half-away(x / d),
 * d stored as f16. */
static void quant_q8_0(const float *x, kvl_block_q8_0 *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float amax = 0;
        for (int j = 0; j < KVL_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        for (int j = 0; j < KVL_QK8_0; j++) {
            float q = d != 0 ? roundf(x[j] / d) : 0.0f;
            if (!(q == q)) q = 0; /* NaN input */
            b[i].qs[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
        b[i].d = kvl_f32_to_f16(d);
        x += KVL_QK8_0;
    }
}

size_t kvl_quantize_row(int type, const float *src, void *dst, int64_t n) {
    const size_t bytes = kvl_row_bytes(type, n);
    if (n <= 0 || (bytes == 0 && n != 0)) return 0;
    uint16_t *h = dst;
    switch (type) {
    case KVL_TYPE_F32: memcpy(dst, src, bytes); break;
    case KVL_TYPE_F16:
        for (int64_t i = 0; i < n; i++) h[i] = kvl_f32_to_f16(src[i]);
        break;
    case KVL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) h[i] = kvl_f32_to_bf16(src[i]);
        break;
    case KVL_TYPE_Q8_0: quant_q8_0(src, dst, n / KVL_QK8_0); break;
    default: return 0;
    }
    return bytes;
}
