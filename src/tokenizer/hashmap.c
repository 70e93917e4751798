/* Open addressing with linear probing, load factor at most 1/2. */
#include "tokenizer/hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

uint64_t kvl_hash_bytes(const char *s, size_t len) {
    /* FNV-1a, then a final avalanche so that the low bits used for the slot index are well mixed. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static size_t cap_for(size_t expect) {
    size_t cap = 16;
    while (cap < expect * 2 + 2) cap *= 2;
    return cap;
}

kvl_status kvl_strmap_init(kvl_strmap *m, size_t expect) {
    memset(m, 0, sizeof *m);
    m->cap = cap_for(expect);
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->lens = malloc(m->cap * sizeof *m->lens);
    m->hashes = malloc(m->cap * sizeof *m->hashes);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->lens || !m->hashes || !m->vals) {
        kvl_strmap_free(m);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for a hash map of %zu entries", expect);
    }
    return KVL_OK;
}

void kvl_strmap_free(kvl_strmap *m) {
    free(m->keys);
    free(m->lens);
    free(m->hashes);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t str_slot(const kvl_strmap *m, const char *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    uint32_t hh = (uint32_t)(h >> 32);
    while (m->keys[i] && !(m->hashes[i] == hh && m->lens[i] == len && !memcmp(m->keys[i], key, len)))
        i = (i + 1) & mask;
    return i;
}

static kvl_status str_grow(kvl_strmap *m) {
    kvl_strmap b;
    KVL_TRY(kvl_strmap_init(&b, m->cap));
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = str_slot(&b, m->keys[i], m->lens[i], kvl_hash_bytes(m->keys[i], m->lens[i]));
        b.keys[j] = m->keys[i];
        b.lens[j] = m->lens[i];
        b.hashes[j] = m->hashes[i];
        b.vals[j] = m->vals[i];
    }
    b.n = m->n;
    kvl_strmap_free(m);
    *m = b;
    return KVL_OK;
}

kvl_status kvl_strmap_put(kvl_strmap *m, const char *key, size_t len, int32_t val) {
    if (len > UINT32_MAX) return kvl_fail(KVL_ERR_RANGE, "hash map key of %zu bytes is too long", len);
    if ((m->n + 1) * 2 > m->cap) KVL_TRY(str_grow(m));
    uint64_t h = kvl_hash_bytes(key, len);
    size_t i = str_slot(m, key, len, h);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->lens[i] = (uint32_t)len;
        m->hashes[i] = (uint32_t)(h >> 32);
        m->n++;
    }
    m->vals[i] = val;
    return KVL_OK;
}

int32_t kvl_strmap_get(const kvl_strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    size_t i = str_slot(m, key, len, kvl_hash_bytes(key, len));
    return m->keys[i] ? m->vals[i] : -1;
}

kvl_status kvl_u64map_init(kvl_u64map *m, size_t expect) {
    memset(m, 0, sizeof *m);
    m->cap = cap_for(expect);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        kvl_u64map_free(m);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for a hash map of %zu entries", expect);
    }
    memset(m->keys, 0xFF, m->cap * sizeof *m->keys);
    return KVL_OK;
}

void kvl_u64map_free(kvl_u64map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t u64_slot(const kvl_u64map *m, uint64_t key) {
    size_t mask = m->cap - 1, i = (size_t)mix64(key) & mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

kvl_status kvl_u64map_put(kvl_u64map *m, uint64_t key, uint64_t val) {
    if (key == UINT64_MAX) return kvl_fail(KVL_ERR_ARG, "reserved hash map key");
    if ((m->n + 1) * 2 > m->cap) {
        kvl_u64map b;
        KVL_TRY(kvl_u64map_init(&b, m->cap));
        for (size_t i = 0; i < m->cap; i++) {
            if (m->keys[i] == UINT64_MAX) continue;
            size_t j = u64_slot(&b, m->keys[i]);
            b.keys[j] = m->keys[i];
            b.vals[j] = m->vals[i];
        }
        b.n = m->n;
        kvl_u64map_free(m);
        *m = b;
    }
    size_t i = u64_slot(m, key);
    if (m->keys[i] == UINT64_MAX) {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
    return KVL_OK;
}

int kvl_u64map_get(const kvl_u64map *m, uint64_t key, uint64_t *val) {
    if (!m->cap || key == UINT64_MAX) return 0;
    size_t i = u64_slot(m, key);
    if (m->keys[i] == UINT64_MAX) return 0;
    *val = m->vals[i];
    return 1;
}
