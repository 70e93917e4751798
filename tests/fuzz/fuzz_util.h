/* fuzz_util.h - helpers shared by the libFuzzer harnesses in tests/fuzz (see tests/fuzz/README.md).
 *
 * Every harness defines LLVMFuzzerTestOneInput; a harness that needs a file that is absent (the shipped model,
 * ../shared/tokenizers) returns at once on every input, after saying so once on stderr, so that it skips rather
 * than fails. A harness reports a broken property by printing it and calling abort(), which libFuzzer records as
 * a crash with the input that caused it. */
#ifndef KVL_FUZZ_UTIL_H
#define KVL_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KVL_FUZZ_SRC_DIR
#define KVL_FUZZ_SRC_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_REQUIRE(cond, ...)                                                    \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* The repository root: $KVL_SRC, else the directory the build was configured from. */
static inline const char *fuzz_src_dir(void) {
    const char *e = getenv("KVL_SRC");
    return e && *e ? e : KVL_FUZZ_SRC_DIR;
}

/* A path under the repository root (static buffer per call site is enough: used at initialisation). */
static inline void fuzz_path(char *buf, size_t size, const char *rel) { snprintf(buf, size, "%s/%s", fuzz_src_dir(), rel); }

static inline int fuzz_file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* A NUL-terminated malloc'd copy of data[0..n). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

/* Split data at its first NUL byte: part one is data[0..*n1), part two the rest (NULL when there is no NUL). */
static inline const uint8_t *fuzz_split(const uint8_t *data, size_t size, size_t *n1, size_t *n2) {
    const uint8_t *z = size ? memchr(data, 0, size) : NULL;
    if (!z) {
        *n1 = size;
        *n2 = 0;
        return NULL;
    }
    *n1 = (size_t)(z - data);
    *n2 = size - *n1 - 1;
    return z + 1;
}

/* One thread: the harnesses never run the model, and CI shares its cores. */
static inline void fuzz_single_thread(void) { setenv("OMP_NUM_THREADS", "1", 1); }

#endif
