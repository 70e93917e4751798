/* Fuzz probe files (src/think/probe_io.c, kvl_probe_load). The loader reads a path, so each input is written to a
 * per-process temporary file first. A probe that loads is described and scores a vector of zeros to a finite
 * number. */
#include <math.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "kvlens.h"

static char path[256];

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_single_thread();
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/kvl_fuzz_probe_%ld.bin", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    kvl_probe *p = NULL;
    if (kvl_probe_load(path, &p) != KVL_OK) {
        if (getenv("KVL_FUZZ_VERBOSE")) fprintf(stderr, "refused: %s\n", kvl_last_error());
        FUZZ_REQUIRE(p == NULL, "failed load left a probe");
        return 0;
    }
    const int dim = kvl_probe_dim(p);
    FUZZ_REQUIRE(dim > 0 && kvl_probe_hidden(p) > 0, "sizes");
    char buf[512];
    kvl_probe_describe(p, buf, sizeof buf);
    FUZZ_REQUIRE(memchr(buf, 0, sizeof buf), "description not terminated");
    float *x = calloc((size_t)dim, sizeof *x);
    if (!x) abort();
    float y = kvl_probe_score(p, x);
    FUZZ_REQUIRE(!isnan(y), "score is NaN");
    free(x);
    (void)kvl_probe_features(p);
    kvl_probe_free(p);
    return 0;
}
