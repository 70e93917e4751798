/* Element formats: type table, f16/bf16 conversions, Q8_0/Q4_K/Q6_K decoders on hand-built blocks, Q8_0 quantizer.
 * Expected values come from the format definitions written out here, element by element; the decoders under test
 * are never used to compute them. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "compute/quant.h"
#include "test_util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE binary16 value from its fields (spec formula). */
static double half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}
/* bfloat16 value: 1 sign, 8 exponent (bias 127), 7 mantissa bits. */
static double bf16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e == 0 ? ldexp(m, -133) : ldexp(128 + m, e - 134);
    return s ? -v : v;
}

static void test_types(void) {
    static const struct {
        int type;
        const char *name;
        int blck, bytes, supported;
    } want[] = {
        {0, "f32", 1, 4, 1},       {1, "f16", 1, 2, 1},       {2, "q4_0", 32, 18, 1},   {3, "q4_1", 32, 20, 1},
        {6, "q5_0", 32, 22, 1},    {7, "q5_1", 32, 24, 1},    {8, "q8_0", 32, 34, 1},   {9, "q8_1", 32, 36, 0},
        {10, "q2_K", 256, 84, 0},  {11, "q3_K", 256, 110, 0}, {12, "q4_K", 256, 144, 1}, {13, "q5_K", 256, 176, 0},
        {14, "q6_K", 256, 210, 1}, {15, "q8_K", 256, 292, 0}, {30, "bf16", 1, 2, 1},    {28, "f64", 1, 8, 0},
        {24, "i8", 1, 1, 0},       {26, "i32", 1, 4, 0},      {23, "iq4_xs", 256, 136, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *n = kvl_type_name(want[i].type);
        CHECK_MSG(n && strcmp(n, want[i].name) == 0, "type %d name %s", want[i].type, n ? n : "(null)");
        CHECK(kvl_type_block_elems(want[i].type) == want[i].blck);
        CHECK(kvl_type_block_bytes(want[i].type) == (size_t)want[i].bytes);
        CHECK(kvl_type_supported(want[i].type) == want[i].supported);
    }
    const int unknown[] = {-1, 4, 5, 31, 36, 1000};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK(kvl_type_name(unknown[i]) == NULL);
        CHECK(kvl_type_block_elems(unknown[i]) == 0);
        CHECK(kvl_row_bytes(unknown[i], 32) == 0);
        CHECK(!kvl_type_supported(unknown[i]));
    }
    CHECK(kvl_row_bytes(KVL_TYPE_Q4_K, 512) == 288);
    CHECK(kvl_row_bytes(KVL_TYPE_Q4_K, 100) == 0);
    CHECK(kvl_row_bytes(KVL_TYPE_Q8_0, 96) == 102);
    CHECK(kvl_row_bytes(KVL_TYPE_Q6_K, 256) == 210);
    CHECK(kvl_row_bytes(KVL_TYPE_F16, 7) == 14);
    CHECK(kvl_row_bytes(KVL_TYPE_F32, -1) == 0);
    CHECK(kvl_row_bytes(KVL_TYPE_F32, INT64_MAX) == 0); /* overflow */
}

static void test_f16(void) {
    /* Every half decodes to its exact value; NaNs stay NaN with their sign and payload's top bits. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kvl_f16_to_f32((uint16_t)h);
        CHECK(fbits(f) == fbits(kvl_f16_to_f32_ref((uint16_t)h)));
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31 && m) {
            bad += !(isnan(f) && (fbits(f) >> 31) == (h >> 15) && ((fbits(f) >> 13) & 0x1ff) == (uint32_t)(m & 0x1ff));
        } else if (e == 31) {
            bad += !(isinf(f) && (f < 0) == (h >> 15));
        } else {
            bad += (double)f != half_value((uint16_t)h) || (fbits(f) >> 31) != (h >> 15);
            /* round trip */
            bad += kvl_f32_to_f16(f) != h || kvl_f32_to_f16_ref(f) != h;
        }
    }
    CHECK_MSG(bad == 0, "%d f16 decode/round-trip mismatches", bad);

    /* Ties between adjacent finite halves go to the even one; a hair off a tie goes to the nearer one. */
    bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        for (int s = 0; s < 2; s++) {
            uint16_t a = (uint16_t)(h | (s << 15)), b = (uint16_t)((h + 1) | (s << 15));
            double mid = (half_value(a) + half_value(b)) / 2;
            float fm = (float)mid;
            bad += (double)fm != mid; /* representable in f32 */
            uint16_t even = (h & 1) ? b : a;
            bad += kvl_f32_to_f16(fm) != even || kvl_f32_to_f16_ref(fm) != even;
            float below = nextafterf(fm, 0), above = nextafterf(fm, s ? -INFINITY : INFINITY);
            bad += kvl_f32_to_f16(below) != a || kvl_f32_to_f16(above) != b;
            bad += kvl_f32_to_f16_ref(below) != a || kvl_f32_to_f16_ref(above) != b;
        }
    }
    CHECK_MSG(bad == 0, "%d f16 rounding mismatches", bad);

    CHECK(kvl_f32_to_f16(0.0f) == 0x0000);
    CHECK(kvl_f32_to_f16(-0.0f) == 0x8000);
    CHECK(kvl_f32_to_f16(65504.0f) == 0x7bff);                /* max */
    CHECK(kvl_f32_to_f16(65519.996f) == 0x7bff);              /* just below the overflow tie */
    CHECK(kvl_f32_to_f16(65520.0f) == 0x7c00);                /* tie with "65536" rounds to even: inf */
    CHECK(kvl_f32_to_f16(1e10f) == 0x7c00);
    CHECK(kvl_f32_to_f16(-1e10f) == 0xfc00);
    CHECK(kvl_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(kvl_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(kvl_f32_to_f16(ldexpf(1, -24)) == 0x0001);          /* smallest subnormal */
    CHECK(kvl_f32_to_f16(ldexpf(1, -25)) == 0x0000);          /* tie with 0: even */
    CHECK(kvl_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 0x0001);
    CHECK(kvl_f32_to_f16(ldexpf(3, -25)) == 0x0002);          /* 1.5 units: tie to even 2 */
    CHECK(kvl_f32_to_f16(ldexpf(1, -14)) == 0x0400);          /* smallest normal */
    CHECK(kvl_f32_to_f16(ldexpf(2047, -25)) == 0x0400);       /* 1023.5 units: tie to even 0x400 */
    CHECK(kvl_f32_to_f16(ldexpf(1, -30)) == 0x0000);
    CHECK(kvl_f32_to_f16(-ldexpf(1, -30)) == 0x8000);
    CHECK(kvl_f32_to_f16(bitsf(0x00000001)) == 0x0000);       /* f32 subnormal */
    CHECK(kvl_f32_to_f16(1.0f) == 0x3c00);
    CHECK(kvl_f32_to_f16(-2.0f) == 0xc000);
    CHECK(kvl_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00);   /* tie: even */
    CHECK(kvl_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
    for (int i = 0; i < 4; i++) { /* NaNs (quiet, signalling, either sign) stay NaN */
        uint32_t nb[] = {0x7fc00000, 0x7f800001, 0xffc00000, 0x7fbfffff};
        uint16_t h = kvl_f32_to_f16(bitsf(nb[i]));
        CHECK_MSG((h & 0x7c00) == 0x7c00 && (h & 0x3ff) && (h >> 15) == (nb[i] >> 31), "nan %08x -> %04x", nb[i], h);
        CHECK(kvl_f32_to_f16_ref(bitsf(nb[i])) == h);
    }
    CHECK(isnan(kvl_f16_to_f32(0x7e00)) && isnan(kvl_f16_to_f32(0x7c01)) && isnan(kvl_f16_to_f32(0xfe00)));
    CHECK(kvl_f16_to_f32(0x8000) == 0 && signbit(kvl_f16_to_f32(0x8000)));
    CHECK(kvl_f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(kvl_f16_to_f32(0x7bff) == 65504.0f);

    /* Random floats: the hardware and portable paths agree. */
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        float f = bitsf(rnd());
        bad += kvl_f32_to_f16(f) != kvl_f32_to_f16_ref(f);
    }
    CHECK_MSG(bad == 0, "%d f16 hw/portable disagreements", bad);
}

static void test_bf16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kvl_bf16_to_f32((uint16_t)h);
        int e = (h >> 7) & 255, m = h & 127;
        if (e == 255 && m) bad += !isnan(f);
        else if (e == 255) bad += !(isinf(f) && (f < 0) == (h >> 15));
        else bad += (double)f != bf16_value((uint16_t)h) || kvl_f32_to_bf16(f) != h;
    }
    CHECK_MSG(bad == 0, "%d bf16 decode/round-trip mismatches", bad);
    bad = 0;
    for (uint32_t h = 0; h < 0x7f7f; h++) {
        for (int s = 0; s < 2; s++) {
            uint16_t a = (uint16_t)(h | (s << 15)), b = (uint16_t)((h + 1) | (s << 15));
            double mid = (bf16_value(a) + bf16_value(b)) / 2;
            float fm = (float)mid;
            bad += (double)fm != mid;
            bad += kvl_f32_to_bf16(fm) != ((h & 1) ? b : a);
            bad += kvl_f32_to_bf16(nextafterf(fm, 0)) != a;
            bad += kvl_f32_to_bf16(nextafterf(fm, s ? -INFINITY : INFINITY)) != b;
        }
    }
    CHECK_MSG(bad == 0, "%d bf16 rounding mismatches", bad);
    CHECK(kvl_f32_to_bf16(0.0f) == 0x0000);
    CHECK(kvl_f32_to_bf16(-0.0f) == 0x8000);
    CHECK(kvl_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(kvl_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(kvl_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(kvl_f32_to_bf16(bitsf(0x7f7fffff)) == 0x7f80);      /* max float rounds up to inf */
    CHECK(kvl_f32_to_bf16(bitsf(0x00000001)) == 0x0000);      /* f32 subnormals: bf16 has them too */
    CHECK(kvl_f32_to_bf16(bitsf(0x00018000)) == 0x0002);      /* subnormal tie 1.5 -> 2 */
    CHECK(kvl_bf16_to_f32(0x0001) == ldexpf(1, -133));
    const uint32_t nans[] = {0x7f800001, 0x7fc00000, 0xff800001, 0x7fff0000};
    for (int i = 0; i < 4; i++) {
        uint16_t h = kvl_f32_to_bf16(bitsf(nans[i]));
        CHECK_MSG((h & 0x7f80) == 0x7f80 && (h & 0x7f) && (h >> 15) == (nans[i] >> 31), "nan %08x -> %04x", nans[i],
                  h);
    }
}

static int near(double got, double want) { return fabs(got - want) <= 1e-6 * fabs(want) + 1e-30; }

static void test_q8_0(void) {
    kvl_block_q8_0 b[2];
    const uint16_t ds[2] = {0x3800 /* 0.5 */, 0x8c01 /* small negative normal */};
    for (int i = 0; i < 2; i++) {
        b[i].d = ds[i];
        for (int j = 0; j < 32; j++) b[i].qs[j] = (int8_t)(j == 0 ? -128 : j == 1 ? 127 : (int)(rnd() & 0xff) - 128);
    }
    float y[64];
    kvl_dequant_row(KVL_TYPE_Q8_0, b, y, 64);
    int bad = 0;
    for (int e = 0; e < 64; e++) bad += !near(y[e], half_value(ds[e / 32]) * b[e / 32].qs[e % 32]);
    CHECK_MSG(bad == 0, "q8_0: %d wrong", bad);
    CHECK(y[0] == -64.0f && y[1] == 63.5f);

    /* quantize -> dequantize: error within half a step (plus the f16 rounding of d) */
    float x[32 * 8], z[32 * 8];
    kvl_block_q8_0 q[8];
    for (int i = 0; i < 32 * 8; i++) x[i] = ((int)(rnd() % 20001) - 10000) * (i < 32 ? 1e-6f : i < 64 ? 3.0f : 0.01f);
    for (int i = 64; i < 96; i++) x[i] = 0; /* an all-zero block */
    x[200] = 5000.0f;                       /* one outlier */
    CHECK(kvl_quantize_row(KVL_TYPE_Q8_0, x, q, 32 * 8) == sizeof q);
    kvl_dequant_row(KVL_TYPE_Q8_0, q, z, 32 * 8);
    bad = 0;
    for (int blk = 0; blk < 8; blk++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[blk * 32 + j]));
        double d = amax / 127.0f, d16 = half_value(q[blk].d);
        bad += q[blk].d != kvl_f32_to_f16((float)d);
        for (int j = 0; j < 32; j++) {
            double err = fabs((double)z[blk * 32 + j] - x[blk * 32 + j]);
            /* half a step, the f32 rounding of x/d and of d*q, and the f16 rounding of d */
            bad += err > (0.5 + 1e-5) * d + 127 * fabs(d - d16) + 1e-6 * fabs(x[blk * 32 + j]);
            if (fabsf(x[blk * 32 + j]) == amax && amax > 0) bad += abs(q[blk].qs[j]) != 127;
        }
    }
    CHECK_MSG(bad == 0, "q8_0 quantization: %d bad", bad);
    for (int j = 0; j < 32; j++) CHECK(z[64 + j] == 0 && q[2].qs[j] == 0);
    CHECK(kvl_quantize_row(KVL_TYPE_Q8_0, x, q, 33) == 0);
    CHECK(kvl_quantize_row(KVL_TYPE_Q4_K, x, q, 256) == 0); /* no Q4_K quantizer */

    /* F16 / BF16 / F32 row encoders agree with the scalar conversions */
    uint16_t h[16];
    float f[16];
    CHECK(kvl_quantize_row(KVL_TYPE_F16, x + 32, h, 16) == 32);
    kvl_dequant_row(KVL_TYPE_F16, h, f, 16);
    for (int i = 0; i < 16; i++) CHECK(h[i] == kvl_f32_to_f16(x[32 + i]) && f[i] == (float)half_value(h[i]));
    CHECK(kvl_quantize_row(KVL_TYPE_BF16, x + 32, h, 16) == 32);
    kvl_dequant_row(KVL_TYPE_BF16, h, f, 16);
    for (int i = 0; i < 16; i++) CHECK(h[i] == kvl_f32_to_bf16(x[32 + i]) && f[i] == (float)bf16_value(h[i]));
    CHECK(kvl_quantize_row(KVL_TYPE_F32, x, f, 16) == 64);
    CHECK(memcmp(f, x, 64) == 0);
}

/* Q4_K: write 6-bit scale/min of sub-block j into the 12 packed bytes as the format defines it:
 * j < 4: scale in bits 0-5 of byte j, min in bits 0-5 of byte j+4;
 * j >= 4: scale low 4 bits in the low nibble of byte j+4 and its top 2 bits in bits 6-7 of byte j-4;
 *         min low 4 bits in the high nibble of byte j+4 and its top 2 bits in bits 6-7 of byte j. */
static void q4k_pack(uint8_t s[12], int j, int sc, int m) {
    if (j < 4) {
        s[j] = (uint8_t)((s[j] & 0xc0) | sc);
        s[j + 4] = (uint8_t)((s[j + 4] & 0xc0) | m);
    } else {
        s[j + 4] = (uint8_t)((sc & 15) | ((m & 15) << 4));
        s[j - 4] = (uint8_t)((s[j - 4] & 0x3f) | ((sc >> 4) << 6));
        s[j] = (uint8_t)((s[j] & 0x3f) | ((m >> 4) << 6));
    }
}
/* Element e (0..255) lives in sub-block e/32; sub-blocks 2k and 2k+1 share qs[32k .. 32k+31], low nibble for the
 * even one. */
static void q4k_set(kvl_block_q4_K *b, int e, int q) {
    int sub = e / 32, byte = 32 * (sub / 2) + e % 32;
    if (sub % 2 == 0) b->qs[byte] = (uint8_t)((b->qs[byte] & 0xf0) | q);
    else b->qs[byte] = (uint8_t)((b->qs[byte] & 0x0f) | (q << 4));
}

static void test_q4_K(void) {
    kvl_block_q4_K b[2];
    int sc[2][8], mn[2][8], q[2][256];
    memset(b, 0, sizeof b);
    b[0].d = 0x2e66;    /* ~0.1 */
    b[0].dmin = 0x2266; /* ~0.0125 */
    b[1].d = 0x1400;    /* small */
    b[1].dmin = 0x9400; /* negative dmin: allowed by the format */
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 8; j++) { /* distinct values that use all 6 bits, high bits included */
            sc[i][j] = i == 0 ? 63 - 7 * j : (int)(rnd() & 63);
            mn[i][j] = i == 0 ? 16 + 6 * j : (int)(rnd() & 63);
            q4k_pack(b[i].scales, j, sc[i][j], mn[i][j]);
        }
        for (int e = 0; e < 256; e++) {
            q[i][e] = (int)(rnd() & 15);
            q4k_set(&b[i], e, q[i][e]);
        }
    }
    float y[512];
    kvl_dequant_row(KVL_TYPE_Q4_K, b, y, 512);
    int bad = 0;
    for (int i = 0; i < 2; i++)
        for (int e = 0; e < 256; e++) {
            int j = e / 32;
            double want = half_value(b[i].d) * sc[i][j] * q[i][e] - half_value(b[i].dmin) * mn[i][j];
            if (fabs(y[256 * i + e] - want) > 1e-6 * fabs(want) + 1e-9) {
                if (bad < 5) fprintf(stderr, "q4_K block %d elem %d: %g want %g\n", i, e, y[256 * i + e], want);
                bad++;
            }
        }
    CHECK_MSG(bad == 0, "q4_K: %d wrong", bad);

    /* Each scale and each min on its own: only its sub-block moves. */
    for (int j = 0; j < 8; j++)
        for (int which = 0; which < 2; which++) {
            kvl_block_q4_K t;
            memset(&t, 0, sizeof t);
            t.d = 0x3c00;    /* 1 */
            t.dmin = 0x3c00; /* 1 */
            for (int e = 0; e < 256; e++) q4k_set(&t, e, 1);
            q4k_pack(t.scales, j, which ? 0 : 37, which ? 45 : 0);
            float z[256];
            kvl_dequant_row(KVL_TYPE_Q4_K, &t, z, 256);
            int wrong = 0;
            for (int e = 0; e < 256; e++) wrong += z[e] != (e / 32 == j ? (which ? -45.0f : 37.0f) : 0.0f);
            CHECK_MSG(wrong == 0, "q4_K sub-block %d %s packing: %d wrong", j, which ? "min" : "scale", wrong);
        }
    /* Each nibble on its own */
    bad = 0;
    for (int e0 = 0; e0 < 256; e0++) {
        kvl_block_q4_K t;
        memset(&t, 0, sizeof t);
        t.d = 0x3c00;
        for (int j = 0; j < 8; j++) q4k_pack(t.scales, j, 1, 0);
        q4k_set(&t, e0, 15);
        float z[256];
        kvl_dequant_row(KVL_TYPE_Q4_K, &t, z, 256);
        for (int e = 0; e < 256; e++) bad += z[e] != (e == e0 ? 15.0f : 0.0f);
    }
    CHECK_MSG(bad == 0, "q4_K nibble positions: %d wrong", bad);
    /* the exposed unpacker agrees with the packing */
    for (int j = 0; j < 8; j++) {
        int s, m;
        kvl_q4_K_scale_min(b[1].scales, j, &s, &m);
        CHECK(s == sc[1][j] && m == mn[1][j]);
    }
}

/* Q6_K element e: half h = e/128, r = e%128, quadrant = r/32, l = r%32. Low 4 bits: ql[64h + 32*(quadrant&1) + l],
 * low nibble for quadrants 0-1, high nibble for 2-3. High 2 bits: qh[32h + l] bits 2*quadrant..+1.
 * Scale: scales[e/16]. Value d * scale * (q - 32). */
static void q6k_set(kvl_block_q6_K *b, int e, int q) {
    int h = e / 128, r = e % 128, quad = r / 32, l = r % 32;
    uint8_t *lo = &b->ql[64 * h + 32 * (quad & 1) + l], *hi = &b->qh[32 * h + l];
    if (quad < 2) *lo = (uint8_t)((*lo & 0xf0) | (q & 15));
    else *lo = (uint8_t)((*lo & 0x0f) | ((q & 15) << 4));
    *hi = (uint8_t)((*hi & ~(3 << (2 * quad))) | ((q >> 4) << (2 * quad)));
}

static void test_q6_K(void) {
    kvl_block_q6_K b[2];
    int q[2][256];
    memset(b, 0, sizeof b);
    b[0].d = 0x2e66;
    b[1].d = 0xa400; /* negative */
    for (int i = 0; i < 2; i++) {
        for (int s = 0; s < 16; s++) b[i].scales[s] = (int8_t)(i == 0 ? (s * 17 - 128) : (int)(rnd() & 0xff) - 128);
        for (int e = 0; e < 256; e++) {
            q[i][e] = (int)(rnd() & 63);
            q6k_set(&b[i], e, q[i][e]);
        }
    }
    b[0].scales[15] = 127;
    float y[512];
    kvl_dequant_row(KVL_TYPE_Q6_K, b, y, 512);
    int bad = 0;
    for (int i = 0; i < 2; i++)
        for (int e = 0; e < 256; e++) {
            double want = half_value(b[i].d) * b[i].scales[e / 16] * (q[i][e] - 32);
            if (fabs(y[256 * i + e] - want) > 1e-6 * fabs(want) + 1e-9) {
                if (bad < 5) fprintf(stderr, "q6_K block %d elem %d: %g want %g\n", i, e, y[256 * i + e], want);
                bad++;
            }
        }
    CHECK_MSG(bad == 0, "q6_K: %d wrong", bad);

    /* Single element at 63 (+31) among 32s (0): every quadrant of both halves, low and high bits. */
    int wrong[4] = {0};
    for (int e0 = 0; e0 < 256; e0++)
        for (int hv = 0; hv < 2; hv++) {
            kvl_block_q6_K t;
            memset(&t, 0, sizeof t);
            t.d = 0x3c00;
            for (int s = 0; s < 16; s++) t.scales[s] = (int8_t)(s + 1);
            for (int e = 0; e < 256; e++) q6k_set(&t, e, 32);
            int qv = hv ? 48 : 47; /* 48: only a high bit differs from 32; 47: only low bits */
            q6k_set(&t, e0, qv);
            float z[256];
            kvl_dequant_row(KVL_TYPE_Q6_K, &t, z, 256);
            for (int e = 0; e < 256; e++)
                wrong[(e0 % 128) / 32] += z[e] != (e == e0 ? (float)((e0 / 16 + 1) * (qv - 32)) : 0.0f);
        }
    for (int quad = 0; quad < 4; quad++) CHECK_MSG(wrong[quad] == 0, "q6_K quadrant %d: %d wrong", quad, wrong[quad]);
}

/* Q4_0 / Q4_1 / Q5_0 / Q5_1 blocks built byte by byte: value j's code is the low nibble of byte j (j < 16) or the
 * high nibble of byte j - 16, plus (Q5) bit j of the 32-bit little-endian qh as bit 4. */
static void test_legacy(void) {
    const uint16_t d = 0x3800 /* 0.5 */, m = 0xbc00 /* -1 */;
    for (int type = 0; type < 4; type++) {
        const int t = (const int[]){KVL_TYPE_Q4_0, KVL_TYPE_Q4_1, KVL_TYPE_Q5_0, KVL_TYPE_Q5_1}[type];
        const int has_m = t == KVL_TYPE_Q4_1 || t == KVL_TYPE_Q5_1, q5 = t == KVL_TYPE_Q5_0 || t == KVL_TYPE_Q5_1;
        uint8_t blk[24] = {0};
        int code[32];
        for (int j = 0; j < 32; j++) code[j] = (int)(rnd() % (q5 ? 32 : 16));
        code[0] = 0, code[31] = q5 ? 31 : 15; /* the extremes */
        memcpy(blk, &d, 2);
        if (has_m) memcpy(blk + 2, &m, 2);
        uint8_t *qh = blk + 2 + 2 * has_m, *qs = qh + 4 * q5;
        for (int j = 0; j < 32; j++) {
            qs[j % 16] |= (uint8_t)((code[j] & 15) << (j < 16 ? 0 : 4));
            if (q5 && code[j] & 16) qh[j / 8] |= (uint8_t)(1 << (j % 8));
        }
        CHECK(kvl_type_block_bytes(t) == (size_t)(18 + 2 * has_m + 4 * q5));
        float y[32];
        kvl_dequant_row(t, blk, y, 32);
        int bad = 0;
        for (int j = 0; j < 32; j++) {
            const float want = has_m ? 0.5f * code[j] - 1.0f : 0.5f * (code[j] - (q5 ? 16 : 8));
            bad += y[j] != want;
        }
        CHECK_MSG(bad == 0, "%s: %d of 32 values wrong", kvl_type_name(t), bad);
        uint8_t q[32];
        float dd, mm;
        kvl_legacy_codes(t, blk, q, &dd, &mm);
        bad = 0;
        for (int j = 0; j < 32; j++) bad += q[j] != code[j] || dd * q[j] + mm != y[j];
        CHECK_MSG(bad == 0, "%s codes: %d wrong", kvl_type_name(t), bad);
    }
}

int main(void) {
    test_types();
    test_legacy();
    test_f16();
    test_bf16();
    test_q8_0();
    test_q4_K();
    test_q6_K();
    return kvl_test_result("test_quant");
}
