/* Test helpers: write .safetensors files and small files from test code (independent of src/convert).
 * Values used by the tests are k/16 with small k, exact in f32, f16 and bf16, so encodings here need not round. */
#ifndef KVL_TEST_ST_WRITE_H
#define KVL_TEST_ST_WRITE_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    const char *dtype;   /* "F32", "F16", "BF16" (encoded from vals) or anything else (raw bytes) */
    int n_dims;
    int64_t shape[4];
    const float *vals;   /* n elements, for F32/F16/BF16 */
    const void *raw;     /* other dtypes: raw bytes */
    size_t raw_bytes;
} tst_tensor;

/* f32 -> f16 for values exactly representable as normal f16 numbers (or zero). */
static inline uint16_t tst_f16(float x) {
    if (x == 0) return signbit(x) ? 0x8000 : 0;
    uint16_t sign = x < 0 ? 0x8000 : 0;
    int e;
    double m = frexp(fabs(x), &e); /* |x| = m * 2^e, m in [0.5, 1) */
    return (uint16_t)(sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)lround((m * 2 - 1) * 1024));
}
static inline uint16_t tst_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)(u >> 16); /* exact for the values used */
}
static inline float tst_f16_to_f32(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)((h & 0x8000) ? -v : v);
}
static inline float tst_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline size_t tst_dsize(const char *dtype) {
    if (!strcmp(dtype, "F32") || !strcmp(dtype, "I32")) return 4;
    if (!strcmp(dtype, "F16") || !strcmp(dtype, "BF16") || !strcmp(dtype, "I16")) return 2;
    if (!strcmp(dtype, "F64") || !strcmp(dtype, "I64")) return 8;
    return 1;
}

static inline int64_t tst_numel(const tst_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= t->shape[d];
    return n;
}

/* Raw file: 8-byte little-endian length field, header bytes, data bytes. */
static inline int tst_write_raw(const char *path, uint64_t len_field, const char *hdr, size_t hdr_len, const void *data,
                                size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(len_field >> (8 * i));
    int ok = fwrite(lb, 1, 8, f) == 8 && fwrite(hdr, 1, hdr_len, f) == hdr_len &&
             (data_len == 0 || fwrite(data, 1, data_len, f) == data_len);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* A well-formed .safetensors file with the tensors in order; metadata: JSON object text or NULL. */
static inline int tst_write_safetensors(const char *path, const tst_tensor *t, int n, const char *metadata) {
    size_t cap = 4096 + (size_t)n * 256, len = 0, total = 0;
    char *hdr = malloc(cap);
    for (int i = 0; i < n; i++) total += (size_t)tst_numel(&t[i]) * tst_dsize(t[i].dtype);
    unsigned char *data = malloc(total ? total : 1);
    if (!hdr || !data) return -1;
    len += (size_t)snprintf(hdr + len, cap - len, "{");
    if (metadata) len += (size_t)snprintf(hdr + len, cap - len, "\"__metadata__\":%s", metadata);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t nb = (size_t)tst_numel(&t[i]) * tst_dsize(t[i].dtype);
        len += (size_t)snprintf(hdr + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (i || metadata) ? "," : "",
                                t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].n_dims; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        unsigned char *p = data + off;
        int64_t ne = tst_numel(&t[i]);
        if (!strcmp(t[i].dtype, "F32") && nb) memcpy(p, t[i].vals, nb);
        else if (!strcmp(t[i].dtype, "F16"))
            for (int64_t k = 0; k < ne; k++) {
                uint16_t h = tst_f16(t[i].vals[k]);
                memcpy(p + 2 * k, &h, 2);
            }
        else if (!strcmp(t[i].dtype, "BF16"))
            for (int64_t k = 0; k < ne; k++) {
                uint16_t h = tst_bf16(t[i].vals[k]);
                memcpy(p + 2 * k, &h, 2);
            }
        else if (t[i].raw) memcpy(p, t[i].raw, nb < t[i].raw_bytes ? nb : t[i].raw_bytes);
        else memset(p, 0, nb);
        off += nb;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' '; /* pad like the reference writer does */
    int rc = tst_write_raw(path, len, hdr, len, data, total);
    free(hdr);
    free(data);
    return rc;
}

static inline int tst_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* A fresh temporary directory (removed by tst_rmdir). */
static inline char *tst_mkdtemp(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/kvl_test_XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void tst_rmdir(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
