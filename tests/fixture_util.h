/* Shared by the tests that run the transformers fixtures (tests/fixtures/<name>): convert a fixture checkpoint to a
 * temporary GGUF and load it, read small files, and measure relative error the way every parity test states it. */
#ifndef KVL_TEST_FIXTURE_UTIL_H
#define KVL_TEST_FIXTURE_UTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvlens.h"
#include "test_util.h"

/* max |a - b| / max |b| (NaN in a counts as infinite error) */
static inline double fx_rel_err(const float *a, const float *b, int64_t n) {
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > e || d != d) e = d != d ? INFINITY : d;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0 ? e / m : e;
}

/* A whole text file, NUL-terminated (NULL if it cannot be read). */
static inline char *fx_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc(n + 1) : NULL;
    if (s && fread(s, 1, n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

/* Convert tests/fixtures/<fx>/hf to `type` (no vocabulary) and load it; NULL (with a failed CHECK) on error. */
static inline kvl_model *fx_load_fixture(const char *fx, int type) {
    char hf[1024], gg[1024];
    snprintf(hf, sizeof hf, "%s/tests/fixtures/%s/hf", kvl_test_env("KVL_SRC", "."), fx);
    snprintf(gg, sizeof gg, "%s/kvl_fx_%d_%s_%d.gguf", kvl_test_env("TMPDIR", "/tmp"), (int)getpid(), fx, type);
    kvl_convert_params cp = kvl_convert_default_params();
    cp.type = type;
    cp.flags = KVL_CONVERT_NO_VOCAB;
    kvl_status s = kvl_convert_hf(hf, gg, &cp);
    CHECK_MSG(s == KVL_OK, "convert %s: %s", fx, kvl_last_error());
    if (s) return NULL;
    kvl_model *m = NULL;
    s = kvl_model_load(gg, &m);
    unlink(gg);
    CHECK_MSG(s == KVL_OK, "load %s: %s", fx, kvl_last_error());
    return s ? NULL : m;
}
#endif
