/* Minimal test harness: CHECK records a failure and goes on; main returns kvl_test_result(). Exit 77 = skip. */
#ifndef KVL_TEST_UTIL_H
#define KVL_TEST_UTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int kvl_test_failures = 0, kvl_test_checks = 0;

#define CHECK(cond)                                                               \
    do {                                                                          \
        kvl_test_checks++;                                                        \
        if (!(cond)) {                                                            \
            kvl_test_failures++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                         \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        kvl_test_checks++;                                                       \
        if (!(cond)) {                                                           \
            kvl_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%g vs %g", (double)(a), (double)(b))

static inline int kvl_test_result(const char *name) {
    printf("%s: %d checks, %d failed\n", name, kvl_test_checks, kvl_test_failures);
    return kvl_test_failures ? 1 : 0;
}

/* Skip the whole test (ctest reports it as skipped). */
#define SKIP(...)                          \
    do {                                   \
        printf("SKIP: " __VA_ARGS__);      \
        putchar('\n');                     \
        exit(77);                          \
    } while (0)

/* Path under the source tree / ../shared, from the environment ctest sets. */
static inline const char *kvl_test_env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Copy a file; 0 on success. */
static inline int kvl_test_copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    if (!a || !b) {
        if (a) fclose(a);
        return -1;
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) bad |= fwrite(buf, 1, n, b) != n;
    fclose(a);
    return fclose(b) || bad ? -1 : 0;
}
#endif
