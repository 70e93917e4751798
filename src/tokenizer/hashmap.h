/* hashmap.h - two open-addressing hash maps used by the tokenizer: byte strings -> int32 (keys are NOT copied:
 * they must outlive the map) and uint64 -> uint64. Both grow as needed; lookups never scan. */
#ifndef KVL_HASHMAP_H
#define KVL_HASHMAP_H
#include <stddef.h>
#include <stdint.h>

#include "kvlens.h"

typedef struct {
    const char **keys;
    uint32_t *lens;
    uint32_t *hashes; /* low bits of each key's hash: probes compare these before touching the key */
    int32_t *vals;
    size_t cap, n; /* cap is a power of two; a NULL key marks an empty slot */
} kvl_strmap;

kvl_status kvl_strmap_init(kvl_strmap *m, size_t expect);
void kvl_strmap_free(kvl_strmap *m);
/* Insert or replace. */
kvl_status kvl_strmap_put(kvl_strmap *m, const char *key, size_t len, int32_t val);
/* Value of key, or -1 when absent. */
int32_t kvl_strmap_get(const kvl_strmap *m, const char *key, size_t len);

typedef struct {
    uint64_t *keys; /* UINT64_MAX marks an empty slot (so it cannot be used as a key) */
    uint64_t *vals;
    size_t cap, n;
} kvl_u64map;

kvl_status kvl_u64map_init(kvl_u64map *m, size_t expect);
void kvl_u64map_free(kvl_u64map *m);
kvl_status kvl_u64map_put(kvl_u64map *m, uint64_t key, uint64_t val);
/* 1 and *val when present, 0 when absent. */
int kvl_u64map_get(const kvl_u64map *m, uint64_t key, uint64_t *val);

uint64_t kvl_hash_bytes(const char *s, size_t len);

#endif
