/* Prepared weight layouts (mm_q8_prep.c for Q8_0, mm_gemm.c for BF16): built once per weight by the first product
 * that wants one, kept in kvl_weight.prep, freed by kvl_weight_release.
 *
 * Memory: a prepared copy is as large as the weight (rows padded to the layout's panel). After building it, the
 * kernels never read the original again (only kvl_weight_row does: token embeddings). For a mapped GGUF the
 * original's pages are then unmapped from the process (they stay in the page cache as clean, reclaimable file
 * pages), so the process holds about one copy of its weights. Anonymous memory (--no-mmap, random --shape models)
 * cannot be dropped without losing it: there the prepared copies add the weights' size (marked cold only).
 * KVL_REPACK=0 in the environment turns the layouts off (the kernels then read the original, as before). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compute/mm_internal.h"

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

/* Is [p, p + n) inside one read-only private mapping of a file (a mapped GGUF)? From /proc/self/maps. */
static int mapped_file_ro(uintptr_t p, uintptr_t n) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[512], perms[8];
    unsigned long lo, hi, off, inode;
    unsigned dmaj, dmin;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &dmaj, &dmin, &inode) != 7) continue;
        if (p >= lo && p + n <= hi) {
            found = inode != 0 && perms[1] == '-' && perms[3] == 'p';
            break;
        }
    }
    fclose(f);
    return found;
}

/* The original of a prepared weight, [p, p + n), page-aligned interior: unmapped from this process where it is a
 * read-only file mapping (MADV_DONTNEED: the pages stay in the page cache, clean, and a later read, e.g. a token
 * embedding row of a tied output matrix, maps them again without I/O while they are cached); elsewhere (malloc'd
 * or huge-page memory, where that would lose the contents) only marked cold (MADV_COLD: reclaimed first under
 * memory pressure, which anonymous memory without swap never is). MADV_PAGEOUT, which evicts file pages from the
 * cache at once, was measured to turn later embedding lookups into major faults. */
static void release_original(const void *p, size_t n) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + pg - 1) / pg * pg, hi = ((uintptr_t)p + n) / pg * pg;
    if (hi <= lo) return;
    if (mapped_file_ro(lo, hi - lo)) {
        madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: failure changes nothing */
        return;
    }
#ifdef MADV_COLD
    madvise((void *)lo, hi - lo, MADV_COLD);
#endif
}

/* 64-byte aligned (the kernels' loads); from 2 MiB on, 2 MiB aligned with its whole 2 MiB pages advised for
 * transparent huge pages (fewer TLB misses while streaming; the tail stays in small pages, so no memory is added) */
static void *alloc_prep(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (bytes < huge) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (posix_memalign(&p, huge, bytes)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes / huge * huge, MADV_HUGEPAGE); /* advice only */
#endif
    return p;
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
            uint8_t *buf = alloc_prep(bytes);
            if (buf) {
#pragma omp parallel for schedule(static)
                for (int64_t i = 0; i < n_parts; i++) build(W, buf + part_bytes * i, i);
                release_original(W->data, (size_t)W->n_out * W->row_bytes);
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

