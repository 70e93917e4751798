/* Prepared weight layouts (mm_q8_prep.c for Q8_0, mm_gemm.c for BF16): built once per weight by the first product
 * that wants one, kept in kvl_weight.prep, freed by kvl_weight_release.
 *
 * Memory: a prepared copy is as large as the weight (rows padded to the layout's panel). After building it, the
 * original's whole pages are handed back to the kernel (madvise MADV_PAGEOUT: clean file pages of a mapped GGUF
 * are dropped, nothing is lost; they come back from the file if read again, e.g. token-embedding rows of a tied
 * output matrix), so resident weight memory stays about one copy for mapped files. Anonymous memory (--no-mmap,
 * random --shape models) cannot be dropped without swap: there the prepared copies add the weights' size.
 * KVL_REPACK=0 in the environment turns the layouts off (the kernels then read the original, as before). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compute/mm_internal.h"
#include "util/hugemem.h"

/* ---- on/off ---- */
static atomic_int prep_mode = -1; /* -1: not read from the environment yet */

int kvl_mm_prep_enabled(void) {
#ifdef KVL_MM_AVX512
    int m = atomic_load_explicit(&prep_mode, memory_order_relaxed);
    if (m < 0) {
        const char *e = getenv("KVL_REPACK");
        m = !(e && !strcmp(e, "0"));
        atomic_store_explicit(&prep_mode, m, memory_order_relaxed);
    }
    return m;
#else
    return 0;
#endif
}

void kvl_mm_prep_set(int on) { atomic_store_explicit(&prep_mode, on < 0 ? -1 : on != 0, memory_order_relaxed); }

/* W->prep when building failed (out of memory): not retried, the other paths serve */
static char prep_failed;

void kvl_weight_release(kvl_weight *W) {
    if (!W) return;
    void *p = __atomic_load_n(&W->prep, __ATOMIC_ACQUIRE);
    if (p && p != (void *)&prep_failed) free(p);
    __atomic_store_n(&W->prep, NULL, __ATOMIC_RELEASE);
}

/* The page-aligned interior of [p, p + n) back to the kernel: it keeps the contents (file pages are reread,
 * anonymous pages swapped if there is swap, else kept), so this only lowers the resident set. */
static void page_out(const void *p, size_t n) {
#ifdef MADV_PAGEOUT
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + pg - 1) / pg * pg, hi = ((uintptr_t)p + n) / pg * pg;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_PAGEOUT); /* advice: failure changes nothing */
#else
    (void)p;
    (void)n;
#endif
}

static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;

const void *kvl_mm_prep_get(const kvl_weight *W, size_t part_bytes, int64_t n_parts,
                            void (*build)(const kvl_weight *W, uint8_t *dst, int64_t part)) {
    if (!kvl_mm_prep_enabled()) return NULL;
    void *p = __atomic_load_n(&W->prep, __ATOMIC_ACQUIRE);
    if (!p) {
        pthread_mutex_lock(&build_lock);
        p = __atomic_load_n(&W->prep, __ATOMIC_ACQUIRE);
        if (!p) {
            const size_t bytes = part_bytes * (size_t)n_parts;
            /* 64-byte aligned (the kernels' loads); large ones on huge pages (2 MiB aligned) */
            uint8_t *buf = bytes >= ((size_t)8 << 20) ? kvl_alloc_huge(bytes) : aligned_alloc(64, (bytes + 63) & ~(size_t)63);
            if (buf) {
#pragma omp parallel for schedule(static)
                for (int64_t i = 0; i < n_parts; i++) build(W, buf + part_bytes * i, i);
                page_out(W->data, (size_t)W->n_out * W->row_bytes);
                p = buf;
            } else {
                p = &prep_failed;
            }
            /* the model owns W; the kernels only ever read it, this field is the one thing written, once */
            __atomic_store_n(&((kvl_weight *)W)->prep, p, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&build_lock);
    }
    return p == (void *)&prep_failed ? NULL : p;
}

