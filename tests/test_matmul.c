/* kvl_matmul / kvl_weight_row against a double-precision reference built from test-local decoders of the block
 * layouts (written independently of the kernels, from the ggml format definitions). Random weights are random
 * bytes inside the blocks (every bit pattern of the quants and scales, including Q8_0's -128), random x with
 * blocks of very different magnitude and an all-zero block.
 *
 * Tolerances: float paths accumulate in f32, so |y - ref| <= 1e-5 * sum|w x|. The paths that quantize x to int8
 * per 32 values (kvl_mm_int8_activations: scale d_b = max|x_b|/127) add at most
 * sum_b (d_b / 2) * sum_{i in b} |w_i|; they are checked against that bound and, tightly (1e-5), against a
 * reference fed the same int8 activations.
 *
 * BF16 weights in prefill (n_tok > KVL_MM_GEMV_MAX_TOK) may run on vdpbf16ps (KVL_MM_BF16DOT builds), which
 * multiplies bf16 activations: SPLIT mode feeds x = hi + lo (hi = bf16(x), lo = bf16(x - hi)), so |x - hi - lo| <=
 * 2^-16 |x| and the error bound grows by 2^-16 sum|w x|; ROUND mode feeds bf16(x), bound 2^-8 sum|w x|. Each mode
 * is run explicitly and also checked tightly (1e-5) against a reference fed the same rounded activations; the
 * worst errors measured are printed.
 *
 * Q8_0 weights on AVX-512 VNNI builds run from a prepared copy (mm_q8_prep.c, built once per weight); every case
 * runs with it and again with it turned off (the per-call GEMM and the row kernels). check_prep compares the two:
 * bit for bit where the arithmetic is the same (more than KVL_MM_GEMV_MAX_TOK tokens), and checks that the
 * original weight bytes are untouched, that a released copy rebuilds to the same results, and that two threads
 * asking for the copy of a fresh weight at once both get right results. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "compute/matmul.h"
#include "compute/quant.h"
#include "compute/mm_internal.h" /* kvl_mm_int8_activations: which calls quantize the activations */
#include "test_util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0; } /* [-1, 1) */

/* ---- test-local reference decoding ---- */
static double ref_f16(uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023, s = h >> 15;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v; /* the generator never makes Inf/NaN */
}
static double ref_bf16(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Element e of a row of `type` (blocks as stored: little-endian bytes). */
static double ref_elem(int type, const uint8_t *row, int64_t e) {
    switch (type) {
    case KVL_TYPE_F32: { float f; memcpy(&f, row + 4 * e, 4); return f; }
    case KVL_TYPE_F16: return ref_f16(rd16(row + 2 * e));
    case KVL_TYPE_BF16: return ref_bf16(rd16(row + 2 * e));
    case KVL_TYPE_Q8_0: {
        const uint8_t *b = row + 34 * (e / 32);
        return ref_f16(rd16(b)) * (int8_t)b[2 + e % 32];
    }
    case KVL_TYPE_Q4_0: case KVL_TYPE_Q4_1: case KVL_TYPE_Q5_0: case KVL_TYPE_Q5_1: {
        /* d, then m (Q*_1), then 32 high bits (Q5), then 16 bytes: value i in the low (i < 16) or high nibble of
         * byte i % 16; Q4_0 / Q5_0 centre the code at 8 / 16 */
        const int has_m = type == KVL_TYPE_Q4_1 || type == KVL_TYPE_Q5_1, q5 = type == KVL_TYPE_Q5_0 || type == KVL_TYPE_Q5_1;
        const int bytes = 18 + 2 * has_m + 4 * q5, i = (int)(e % 32);
        const uint8_t *b = row + bytes * (e / 32), *qs = b + 2 + 2 * has_m + 4 * q5;
        int q = i < 16 ? qs[i] & 15 : qs[i - 16] >> 4;
        if (q5) {
            const uint8_t *qh = b + 2 + 2 * has_m;
            q |= ((qh[i / 8] >> (i % 8)) & 1) << 4;
        }
        const double d = ref_f16(rd16(b));
        return has_m ? d * q + ref_f16(rd16(b + 2)) : d * (q - (q5 ? 16 : 8));
    }
    case KVL_TYPE_Q4_K: {
        const uint8_t *b = row + 144 * (e / 256), *sc = b + 4, *qs = b + 16;
        const int i = (int)(e % 256), sub = i / 32, chunk = i / 64, l = i % 32;
        int s, m; /* 6-bit scale/min of sub-block `sub`: low 6 bits of bytes 0-7, or nibbles of 8-11 + top bits */
        if (sub < 4) { s = sc[sub] & 63; m = sc[sub + 4] & 63; }
        else { s = (sc[sub + 4] & 15) | (sc[sub - 4] >> 6) << 4; m = (sc[sub + 4] >> 4) | (sc[sub] >> 6) << 4; }
        const int q = sub % 2 == 0 ? qs[32 * chunk + l] & 15 : qs[32 * chunk + l] >> 4;
        return ref_f16(rd16(b)) * s * q - ref_f16(rd16(b + 2)) * m;
    }
    case KVL_TYPE_Q6_K: {
        const uint8_t *b = row + 210 * (e / 256), *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const int i = (int)(e % 256), half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
        const uint8_t lbyte = ql[64 * half + 32 * (quarter % 2) + l];
        const int low = quarter < 2 ? lbyte & 15 : lbyte >> 4;
        const int high = (qh[32 * half + l] >> (2 * quarter)) & 3;
        return ref_f16(rd16(b + 208)) * sc[8 * half + 2 * quarter + l / 16] * ((low | high << 4) - 32);
    }
    }
    return 0;
}

/* ---- random rows ---- */
static uint16_t rnd_f16(int emin, int emax) { /* finite half with exponent field in [emin, emax] */
    const int e = emin + (int)(rnd() % (uint64_t)(emax - emin + 1));
    return (uint16_t)((rnd() & 1) << 15 | e << 10 | (rnd() & 1023));
}
static size_t row_bytes(int type, int64_t n) {
    switch (type) {
    case KVL_TYPE_F32: return 4 * n;
    case KVL_TYPE_F16: case KVL_TYPE_BF16: return 2 * n;
    case KVL_TYPE_Q8_0: return n / 32 * 34;
    case KVL_TYPE_Q4_0: return n / 32 * 18;
    case KVL_TYPE_Q4_1: return n / 32 * 20;
    case KVL_TYPE_Q5_0: return n / 32 * 22;
    case KVL_TYPE_Q5_1: return n / 32 * 24;
    case KVL_TYPE_Q4_K: return n / 256 * 144;
    case KVL_TYPE_Q6_K: return n / 256 * 210;
    }
    return 0;
}
/* When set, rows come from kvl_quantize_row on random floats (realistic Q8_0 blocks, |q| <= 127). */
static int g_from_floats = 0;

static void fill_row(int type, uint8_t *row, int64_t n) {
    const size_t nb = row_bytes(type, n);
    if (g_from_floats) {
        float *f = malloc(sizeof(float) * n);
        for (int64_t i = 0; i < n; i++) f[i] = (float)unif() * 0.05f;
        const size_t got = kvl_quantize_row(type, f, row, n);
        free(f);
        CHECK(got == nb);
        return;
    }
    for (size_t i = 0; i < nb; i++) row[i] = (uint8_t)rnd();
    switch (type) {
    case KVL_TYPE_F32:
        for (int64_t i = 0; i < n; i++) { float f = (float)unif(); memcpy(row + 4 * i, &f, 4); }
        break;
    case KVL_TYPE_F16: /* include subnormals (exponent field 0) */
        for (int64_t i = 0; i < n; i++) { uint16_t h = rnd_f16(i % 7 ? 10 : 0, 16); memcpy(row + 2 * i, &h, 2); }
        break;
    case KVL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)((rnd() & 1) << 15 | (118 + rnd() % 10) << 7 | (rnd() & 127));
            memcpy(row + 2 * i, &h, 2);
        }
        break;
    case KVL_TYPE_Q8_0:
        for (int64_t b = 0; b < n / 32; b++) { uint16_t h = rnd_f16(6, 12); memcpy(row + 34 * b, &h, 2); }
        break;
    case KVL_TYPE_Q4_0: case KVL_TYPE_Q4_1: case KVL_TYPE_Q5_0: case KVL_TYPE_Q5_1: {
        const size_t bb = row_bytes(type, 32);
        const int has_m = type == KVL_TYPE_Q4_1 || type == KVL_TYPE_Q5_1;
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t d = rnd_f16(8, 13), m = rnd_f16(8, 13);
            memcpy(row + bb * b, &d, 2);
            if (has_m) memcpy(row + bb * b + 2, &m, 2);
        }
        break;
    }
    case KVL_TYPE_Q4_K:
        for (int64_t b = 0; b < n / 256; b++) {
            uint16_t d = rnd_f16(4, 9), dm = rnd_f16(4, 9);
            memcpy(row + 144 * b, &d, 2);
            memcpy(row + 144 * b + 2, &dm, 2);
        }
        break;
    case KVL_TYPE_Q6_K:
        for (int64_t b = 0; b < n / 256; b++) { uint16_t h = rnd_f16(2, 6); memcpy(row + 210 * b + 208, &h, 2); }
        break;
    }
}

/* The int8 activations the quantized paths use, recomputed here from their definition. */
static void quantize_x(const float *x, int64_t n, float *xq, float *dq) {
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        dq[b] = d;
        for (int j = 0; j < 32; j++) xq[32 * b + j] = d * (float)nearbyintf(x[32 * b + j] * id);
    }
}

/* float -> bf16, round to nearest even (finite inputs), back to double: from the format's definition */
static double bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}
/* The activation the bf16 GEMM multiplies in `mode` (0: x itself). */
static double bf16_act(float x, int mode) {
    if (mode == KVL_MM_BF16_ROUND) return bf16_round(x);
    if (mode == KVL_MM_BF16_SPLIT) {
        const double hi = bf16_round(x);
        return hi + bf16_round((float)(x - hi)); /* x - hi is exact in float */
    }
    return x;
}
/* Worst |y - ref| / sum|w x| seen per bf16 mode (printed at the end). */
static double g_bf16_worst[8];
static int g_bf16_cases[8];

static const char *tname(int type) {
    switch (type) {
    case KVL_TYPE_F32: return "f32";
    case KVL_TYPE_F16: return "f16";
    case KVL_TYPE_BF16: return "bf16";
    case KVL_TYPE_Q8_0: return "q8_0";
    case KVL_TYPE_Q4_K: return "q4_K";
    case KVL_TYPE_Q6_K: return "q6_K";
    case KVL_TYPE_Q4_0: return "q4_0";
    case KVL_TYPE_Q4_1: return "q4_1";
    case KVL_TYPE_Q5_0: return "q5_0";
    case KVL_TYPE_Q5_1: return "q5_1";
    }
    return "?";
}

static int is_quant(int type) {
    return type == KVL_TYPE_Q8_0 || type == KVL_TYPE_Q4_K || type == KVL_TYPE_Q6_K || type == KVL_TYPE_Q4_0 ||
           type == KVL_TYPE_Q4_1 || type == KVL_TYPE_Q5_0 || type == KVL_TYPE_Q5_1;
}

static void check_case(int type, int64_t n_in, int64_t n_out, const int *toks, int ntoks) {
    const size_t rb = row_bytes(type, n_in);
    uint8_t *data = malloc(rb * n_out + 1);
    double *wd = malloc(sizeof(double) * n_in * n_out);
    float *wrow = malloc(sizeof(float) * n_in);
    for (int64_t o = 0; o < n_out; o++) fill_row(type, data + o * rb, n_in);
    for (int64_t o = 0; o < n_out; o++)
        for (int64_t i = 0; i < n_in; i++) wd[o * n_in + i] = ref_elem(type, data + o * rb, i);
    kvl_weight W = {type, n_in, n_out, rb, data, NULL};

    /* kvl_weight_row equals the reference decoding (to f32 rounding of the scale products) */
    int row_bad = 0;
    for (int64_t o = 0; o < n_out; o++) {
        kvl_weight_row(&W, o, wrow);
        for (int64_t i = 0; i < n_in; i++) {
            const double r = wd[o * n_in + i];
            if (fabs(wrow[i] - r) > 4e-7 * fabs(r) + (is_quant(type) ? 1e-9 : 0)) {
                if (!row_bad++) fprintf(stderr, "row %lld elem %lld: %g vs %g\n", (long long)o, (long long)i, wrow[i], r);
            }
        }
    }
    /* the project's reference decoder (quant.c) agrees with this test's */
    int deq_bad = 0;
    for (int64_t o = 0; o < n_out; o++) {
        kvl_dequant_row(type, data + o * rb, wrow, n_in);
        for (int64_t i = 0; i < n_in; i++) {
            const double r = wd[o * n_in + i];
            deq_bad += !(fabs(wrow[i] - r) <= 4e-7 * fabs(r) + (is_quant(type) ? 1e-9 : 0));
        }
    }
    CHECK_MSG(deq_bad == 0, "type %s n_in %lld: kvl_dequant_row differs in %d elements", tname(type), (long long)n_in,
              deq_bad);
    CHECK_MSG(row_bad == 0, "type %s n_in %lld: %d decoded elements differ", tname(type), (long long)n_in, row_bad);

    for (int ti = 0; ti < ntoks; ti++) {
        const int n_tok = toks[ti];
        float *x = malloc(sizeof(float) * n_in * n_tok), *xq = malloc(sizeof(float) * n_in * n_tok);
        float *dq = malloc(sizeof(float) * (n_in / 32 + 1) * n_tok);
        const int64_t ny = (int64_t)n_tok * n_out;
        float *y = malloc(sizeof(float) * (ny + 16));
        for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = (float)unif();
        if (n_in >= 64) { /* a loud block, a quiet block and a zero block */
            for (int j = 0; j < 32; j++) x[j] *= 1000.0f, x[32 + j] *= 1e-3f;
            for (int j = 0; j < 32 && n_in >= 96; j++) x[64 + j] = 0;
        }
        for (int64_t i = 0; i < ny + 16; i++) y[i] = -12345.0f;
        const int int8_path = kvl_mm_int8_activations(type, n_tok);
        /* bf16 GEMM: mode, bound per unit of sum|w x| from rounding x */
        const int bf_mode = type == KVL_TYPE_BF16 && n_tok > KVL_MM_GEMV_MAX_TOK && n_in % 2 == 0 ? kvl_mm_bf16_mode() : 0;
        const int bf_act = bf_mode & 3; /* activation mode; bit 4 = AMX engine */
        const double bf_rel = bf_act == KVL_MM_BF16_SPLIT ? ldexp(1, -16) : bf_act == KVL_MM_BF16_ROUND ? ldexp(1, -8) : 0;
        if (int8_path)
            for (int t = 0; t < n_tok; t++) quantize_x(x + t * n_in, n_in, xq + t * n_in, dq + t * (n_in / 32));

        kvl_matmul(y, x, &W, n_tok);

        int bad = 0;
        double worst = 0;
        for (int t = 0; t < n_tok; t++) {
            for (int64_t o = 0; o < n_out; o++) {
                const double *w = wd + o * n_in;
                const float *xt = x + t * n_in;
                double ref = 0, mag = 0, bound = 0, refq = 0, magq = 0;
                for (int64_t i = 0; i < n_in; i++) {
                    ref += w[i] * xt[i];
                    mag += fabs(w[i] * xt[i]);
                }
                double tol = 1e-5 * mag;
                if (bf_mode) { /* the rounding of x, and tightly: the same product with the rounded x */
                    double refb = 0, magb = 0;
                    for (int64_t i = 0; i < n_in; i++) {
                        const double xb = bf16_act(xt[i], bf_act);
                        refb += w[i] * xb;
                        magb += fabs(w[i] * xb);
                    }
                    tol += bf_rel * (1 + 1e-6) * mag;
                    const double got = y[t * n_out + o];
                    if (!(fabs(got - refb) <= 1e-5 * magb + 1e-30)) {
                        if (!bad++) fprintf(stderr, "  bf16 ref: t %d o %lld: %.9g vs %.9g\n", t, (long long)o, got, refb);
                    }
                }
                if (int8_path) {
                    const float *xqt = xq + t * n_in;
                    for (int64_t b = 0; b < n_in / 32; b++) {
                        double sw = 0;
                        for (int j = 0; j < 32; j++) {
                            sw += fabs(w[32 * b + j]);
                            refq += w[32 * b + j] * xqt[32 * b + j];
                            magq += fabs(w[32 * b + j] * xqt[32 * b + j]);
                        }
                        bound += 0.5 * dq[t * (n_in / 32) + b] * (1 + 1e-5) * sw;
                    }
                    tol += bound;
                    const double got = y[t * n_out + o];
                    if (!(fabs(got - refq) <= 1e-5 * magq + 1e-30)) {
                        if (!bad++) fprintf(stderr, "  int8 ref: t %d o %lld: %.9g vs %.9g\n", t, (long long)o, got, refq);
                    }
                }
                const double got = y[t * n_out + o], err = fabs(got - ref);
                if (mag > 0 && err / mag > worst) worst = err / mag;
                if (!(err <= tol + 1e-30)) {
                    if (!bad++) fprintf(stderr, "  t %d o %lld: %.9g vs %.9g (tol %g)\n", t, (long long)o, got, ref, tol);
                }
            }
        }
        if (type == KVL_TYPE_BF16 && n_tok > KVL_MM_GEMV_MAX_TOK) {
            g_bf16_worst[bf_mode] = worst > g_bf16_worst[bf_mode] ? worst : g_bf16_worst[bf_mode];
            g_bf16_cases[bf_mode]++;
        }
        int guard_bad = 0;
        for (int i = 0; i < 16; i++) guard_bad += y[ny + i] != -12345.0f;
        CHECK_MSG(bad == 0, "type %s n_in %lld n_out %lld n_tok %d: %d outputs off (worst rel %.3g)",
                  tname(type), (long long)n_in, (long long)n_out, n_tok, bad, worst);
        CHECK_MSG(guard_bad == 0, "type %s n_out %lld n_tok %d: wrote past y", tname(type), (long long)n_out, n_tok);
        free(x); free(xq); free(dq); free(y);
    }
    kvl_weight_release(&W);
    free(data); free(wd); free(wrow);
}

/* kvl_matmul_multi equals one kvl_matmul per weight, bit for bit: the same kernels run on the same rows. Mixed
 * formats or widths fall back to one call each. */
static void check_multi(const int *types, const int64_t *n_in, int n_w, int n_tok) {
    uint8_t *data[4];
    kvl_weight W[4];
    const kvl_weight *Wp[4];
    float *y[4], *ref[4];
    const int64_t n_out[4] = {130, 64, 67, 200};
    int64_t max_in = 0;
    for (int i = 0; i < n_w; i++) max_in = n_in[i] > max_in ? n_in[i] : max_in;
    float *x = malloc(sizeof(float) * max_in * n_tok);
    for (int64_t i = 0; i < max_in * n_tok; i++) x[i] = (float)unif();
    for (int i = 0; i < n_w; i++) {
        const size_t rb = row_bytes(types[i], n_in[i]);
        data[i] = malloc(rb * n_out[i]);
        for (int64_t o = 0; o < n_out[i]; o++) fill_row(types[i], data[i] + o * rb, n_in[i]);
        W[i] = (kvl_weight){types[i], n_in[i], n_out[i], rb, data[i], NULL};
        Wp[i] = &W[i];
        y[i] = malloc(sizeof(float) * n_out[i] * n_tok);
        ref[i] = malloc(sizeof(float) * n_out[i] * n_tok);
        kvl_matmul(ref[i], x, &W[i], n_tok);
    }
    const int same_in = n_in[0] == n_in[n_w - 1];
    if (same_in) kvl_matmul_multi(y, x, Wp, n_w, n_tok);
    for (int i = 0; i < n_w && same_in; i++)
        CHECK_MSG(memcmp(y[i], ref[i], sizeof(float) * n_out[i] * n_tok) == 0, "multi: weight %d (%s), n_tok %d", i,
                  tname(types[i]), n_tok);
    for (int i = 0; i < n_w; i++) kvl_weight_release(&W[i]), free(data[i]), free(y[i]), free(ref[i]);
    free(x);
}

/* Prepared layouts (Q8_0, BF16) against the per-call kernels, on the shape edges of the layouts: rows not a
 * multiple of 16 (sub-panels) or 64 (panels, chunks), odd Q8_0 block counts (block pairs), odd BF16 widths, token
 * counts around the tiles (4 for Q8_0, 6 for BF16) and the k-blocks of the GEMM (512). */
typedef struct {
    const kvl_weight *W;
    const float *x;
    float *y;
    int n_tok;
} mm_call;

static void *mm_thread(void *arg) {
    mm_call *c = arg;
    kvl_matmul(c->y, c->x, c->W, c->n_tok);
    return NULL;
}

static void check_prep(int type, int64_t n_in, int64_t n_out) {
    const size_t rb = row_bytes(type, n_in), bytes = rb * n_out;
    uint8_t *data = malloc(bytes), *copy = malloc(bytes);
    for (int64_t o = 0; o < n_out; o++) fill_row(type, data + o * rb, n_in);
    memcpy(copy, data, bytes);
    kvl_weight W = {type, n_in, n_out, rb, data, NULL};
    static const int toks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 64};
    const int max_tok = 64;
    float *x = malloc(sizeof(float) * n_in * max_tok);
    float *y0 = malloc(sizeof(float) * n_out * max_tok), *y1 = malloc(sizeof(float) * n_out * max_tok);
    float *y2 = malloc(sizeof(float) * n_out * max_tok);
    for (int64_t i = 0; i < n_in * max_tok; i++) x[i] = (float)unif();
    int differ = 0, far = 0;
    for (size_t ti = 0; ti < sizeof toks / sizeof *toks; ti++) {
        const int n_tok = toks[ti];
        kvl_mm_prep_set(0);
        kvl_matmul(y0, x, &W, n_tok);
        kvl_mm_prep_set(1);
        kvl_matmul(y1, x, &W, n_tok);
        if (n_tok > KVL_MM_GEMV_MAX_TOK) {
            differ += memcmp(y0, y1, sizeof(float) * n_out * n_tok) != 0;
        } else { /* the same products (int8 for Q8_0), float sums in another order: a few ulp of sum|w x| */
            for (int64_t i = 0; i < n_out * n_tok; i++) {
                double mag = 0;
                const int64_t t = i / n_out, o = i % n_out;
                for (int64_t k = 0; k < n_in; k++)
                    mag += fabs(ref_elem(type, data + o * rb, k) * x[t * n_in + k]);
                far += !(fabs(y0[i] - y1[i]) <= 1e-5 * mag + 1e-30);
            }
        }
    }
    CHECK_MSG(differ == 0, "%s prepared n_in %lld n_out %lld: %d token counts not bit-equal to the per-call GEMM",
              tname(type), (long long)n_in, (long long)n_out, differ);
    CHECK_MSG(far == 0, "%s prepared n_in %lld n_out %lld: %d outputs of 1-3 tokens off the row kernels", tname(type), (long long)n_in,
              (long long)n_out, far);
    CHECK_MSG(memcmp(data, copy, bytes) == 0, "%s prepared n_in %lld: the original weight bytes changed", tname(type), (long long)n_in);
    /* released, then rebuilt: the same results */
    kvl_matmul(y1, x, &W, 9);
    kvl_weight_release(&W);
    CHECK(W.prep == NULL);
    kvl_matmul(y2, x, &W, 9);
    CHECK_MSG(memcmp(y1, y2, sizeof(float) * n_out * 9) == 0, "%s prepared n_in %lld: rebuilt copy differs",
              tname(type), (long long)n_in);
    /* two threads ask for the copy of a fresh weight at once */
    kvl_weight_release(&W);
    float *ya = malloc(sizeof(float) * n_out * 9), *yb = malloc(sizeof(float) * n_out * 9);
    mm_call ca = {&W, x, ya, 9}, cb = {&W, x, yb, 9};
    pthread_t ta;
    const int started = pthread_create(&ta, NULL, mm_thread, &ca) == 0;
    mm_thread(&cb);
    if (started) pthread_join(ta, NULL);
    else mm_thread(&ca);
    CHECK_MSG(memcmp(ya, y2, sizeof(float) * n_out * 9) == 0 && memcmp(yb, y2, sizeof(float) * n_out * 9) == 0,
              "%s prepared n_in %lld: concurrent first use differs", tname(type), (long long)n_in);
    kvl_weight_release(&W);
    kvl_mm_prep_set(-1);
    free(ya); free(yb); free(data); free(copy); free(x); free(y0); free(y1); free(y2);
}

int main(void) {
    static const int toks[] = {1, 2, 3, 7, 16, 33, 100};
    static const int64_t outs[] = {1, 5, 40, 67, 257}; /* 40: 3 sub-panels of 16, the last partial */
    const int ntoks = (int)(sizeof toks / sizeof *toks);
    struct { int type; int64_t n_in[3]; } cases[] = {
        {KVL_TYPE_F32, {37, 96, 544}}, /* 37: block size 1, exercises every tail */
        {KVL_TYPE_F16, {37, 96, 544}},
        {KVL_TYPE_BF16, {37, 96, 544}},
        {KVL_TYPE_Q8_0, {32, 96, 544}},
        {KVL_TYPE_Q4_0, {32, 96, 544}},
        {KVL_TYPE_Q4_1, {32, 96, 544}},
        {KVL_TYPE_Q5_0, {32, 96, 544}},
        {KVL_TYPE_Q5_1, {32, 96, 544}},
        {KVL_TYPE_Q4_K, {256, 768, 0}},
        {KVL_TYPE_Q6_K, {256, 768, 0}},
    };
    kvl_mm_bf16_mode_set(KVL_MM_BF16_OFF); /* the f32 GEMM for every type first */
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int k = 0; k < 3 && cases[c].n_in[k]; k++)
            for (size_t o = 0; o < sizeof outs / sizeof *outs; o++)
                check_case(cases[c].type, cases[c].n_in[k], outs[o], toks, ntoks);
    /* Q8_0 and BF16 again without the prepared copies (where the build has them, the runs above used them) */
    kvl_mm_prep_set(0);
    for (int c = 2; c <= 3; c++)
        for (int k = 0; k < 3; k++)
            for (size_t o = 0; o < sizeof outs / sizeof *outs; o++)
                check_case(cases[c].type, cases[c].n_in[k], outs[o], toks, ntoks);
    kvl_mm_prep_set(-1);
    printf("prepared layouts (q8_0 on AVX-512 VNNI, bf16 on AVX-512): %s in this build\n",
           kvl_mm_prep_enabled() ? "used" : "not used");
    static const int64_t prep_in[] = {32, 64, 96, 544, 1056}, prep_out[] = {1, 15, 16, 17, 63, 65, 130};
    for (size_t k = 0; k < sizeof prep_in / sizeof *prep_in; k++)
        for (size_t o = 0; o < sizeof prep_out / sizeof *prep_out; o++) check_prep(KVL_TYPE_Q8_0, prep_in[k], prep_out[o]);
    static const int64_t bfp_in[] = {2, 37, 96, 1030}, bfp_out[] = {1, 17, 64, 65, 130};
    for (size_t k = 0; k < sizeof bfp_in / sizeof *bfp_in; k++)
        for (size_t o = 0; o < sizeof bfp_out / sizeof *bfp_out; o++) check_prep(KVL_TYPE_BF16, bfp_in[k], bfp_out[o]);

    /* BF16 weights on the bf16 dot product, both activation modes (an AVX2 build stays on the f32 GEMM) */
    static const int pre_toks[] = {4, 7, 16, 33, 100};
    static const int bf_modes[4] = {KVL_MM_BF16_SPLIT, KVL_MM_BF16_ROUND, KVL_MM_BF16_SPLIT | KVL_MM_BF16_AMX,
                                    KVL_MM_BF16_ROUND | KVL_MM_BF16_AMX};
    for (int mi = 0; mi < 4; mi++) {
        kvl_mm_bf16_mode_set(bf_modes[mi]);
        if (kvl_mm_bf16_mode() != bf_modes[mi]) {
            printf("bf16 prefill mode %d not available here (runs as %d)\n", bf_modes[mi], kvl_mm_bf16_mode());
            continue;
        }
        /* 1030: two k-blocks, a tail of 6; 37: odd, f32; AMX takes multiples of 32 (96, 544, 1024), the others
         * fall back to vdpbf16ps with the same rounding */
        static const int64_t bf_in[] = {2, 96, 544, 1030, 37};
        for (size_t k = 0; k < sizeof bf_in / sizeof *bf_in; k++)
            for (size_t o = 0; o < sizeof outs / sizeof *outs; o++) check_case(KVL_TYPE_BF16, bf_in[k], outs[o], pre_toks, 5);
        g_from_floats = 1;
        check_case(KVL_TYPE_BF16, 1024, 67, pre_toks, 5);
        g_from_floats = 0;
        const int64_t in2[2] = {544, 544};
        static const int bf2[2] = {KVL_TYPE_BF16, KVL_TYPE_BF16};
        check_multi(bf2, in2, 2, 64);
    }
    kvl_mm_bf16_mode_set(-1);
    static const char *mname[3] = {"off (f32 GEMM)", "split (hi+lo bf16)", "round (bf16 x)"};
    for (int m = 0; m < 8; m++)
        if (g_bf16_cases[m])
            printf("bf16 prefill, %s%s: %d cases, worst |y - ref| / sum|w x| = %.3g (bound %.3g)\n", mname[m & 3],
                   m & KVL_MM_BF16_AMX ? " on AMX" : "", g_bf16_cases[m], g_bf16_worst[m],
                   1e-5 + ((m & 3) == 1 ? ldexp(1, -16) : (m & 3) == 2 ? ldexp(1, -8) : 0));
#ifndef KVL_MM_BF16DOT
    printf("bf16 prefill: this build has no AVX-512 BF16, split/round ran the f32 GEMM\n");
#endif

    /* Weights made by the project's quantizer, as the converter writes them. */
    g_from_floats = 1;
    check_case(KVL_TYPE_Q8_0, 1024, 67, toks, ntoks);
    check_case(KVL_TYPE_BF16, 1024, 67, toks, ntoks);
    check_case(KVL_TYPE_F16, 96, 67, toks, ntoks);
    g_from_floats = 0;

    static const int multi_toks[] = {1, 2, 3, 9, 64};
    for (int t = 0; t < 5; t++) {
        const int64_t in3[3] = {544, 544, 544};
        static const int q8[3] = {KVL_TYPE_Q8_0, KVL_TYPE_Q8_0, KVL_TYPE_Q8_0};
        static const int bf[3] = {KVL_TYPE_BF16, KVL_TYPE_BF16, KVL_TYPE_BF16};
        static const int qk[3] = {KVL_TYPE_Q4_K, KVL_TYPE_Q4_K, KVL_TYPE_Q6_K}; /* as Q4_K_M stores q, k, v */
        const int64_t in_k[3] = {512, 512, 512};
        check_multi(q8, in3, 3, multi_toks[t]);
        check_multi(bf, in3, 2, multi_toks[t]);
        check_multi(qk, in_k, 3, multi_toks[t]);
    }

    /* An unknown type yields zeros rather than reading the data. */
    float y[6] = {1, 1, 1, 1, 1, 1}, x[4] = {1, 2, 3, 4}, row[4] = {1, 1, 1, 1};
    const kvl_weight bogus = {999, 4, 3, 16, NULL, NULL};
    kvl_matmul(y, x, &bogus, 1);
    kvl_weight_row(&bogus, 0, row);
    CHECK(y[0] == 0 && y[2] == 0 && y[3] == 1 && row[0] == 0 && row[3] == 0);
    /* n_in == 0: empty sums, on every path */
    for (int nt = 1; nt <= 6; nt += 5) {
        float y0[12];
        for (int i = 0; i < 12; i++) y0[i] = 1;
        const kvl_weight empty = {KVL_TYPE_Q8_0, 0, 2, 0, x, NULL};
        kvl_matmul(y0, x, &empty, nt);
        CHECK(y0[0] == 0 && y0[2 * nt - 1] == 0);
    }
    return kvl_test_result("test_matmul");
}
