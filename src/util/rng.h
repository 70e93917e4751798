/* rng.h - splitmix64: a tiny, well-mixed pseudo-random generator whose stream depends only on its seed (seeded
 * splits, shuffles and the random baseline must be reproducible across machines). */
#ifndef KVL_RNG_H
#define KVL_RNG_H
#include <stdint.h>

static inline uint64_t kvl_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static inline double kvl_rng_unit(uint64_t *s) { return ((kvl_splitmix64(s) >> 11) + 1) * 0x1p-53; }

/* Uniform integer in [0, n), n > 0 (the modulo bias is below 2^-40 for the sizes used here). */
static inline int kvl_rng_below(uint64_t *s, int n) { return (int)(kvl_splitmix64(s) % (uint64_t)n); }
#endif
