/* KV cache storage. */
#include "cache/kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "compute/quant.h"
#include "util/error.h"

kvl_status kvl_kvcache_init(kvl_kvcache *c, kvl_cache_type type, int n_layer, int n_kv, int n_ctx, int hd) {
    memset(c, 0, sizeof *c);
    c->type = type;
    c->n_layer = n_layer;
    c->n_kv = n_kv;
    c->n_ctx = n_ctx;
    c->hd = hd;
    size_t n = (size_t)n_layer * n_kv * n_ctx * hd, es = type == KVL_CACHE_F16 ? 2 : 4;
    c->k = calloc(n, es);
    c->v = calloc(n, es);
    if (!c->k || !c->v) {
        kvl_kvcache_free(c);
        return kvl_fail(KVL_ERR_NOMEM, "cannot allocate a KV cache of %zu MiB", 2 * n * es >> 20);
    }
    return KVL_OK;
}

void kvl_kvcache_free(kvl_kvcache *c) {
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

size_t kvl_kvcache_bytes(const kvl_kvcache *c) {
    return 2 * (size_t)c->n_layer * c->n_kv * c->n_ctx * c->hd * (c->type == KVL_CACHE_F16 ? 2 : 4);
}

void kvl_kv_store(kvl_kvcache *c, int which, int l, int h, int t, const float *src) {
    size_t off = kvl_kv_index(c, l, h, t);
    void *base = which ? c->v : c->k;
    if (c->type == KVL_CACHE_F32) {
        memcpy((float *)base + off, src, c->hd * sizeof(float));
    } else {
        uint16_t *d = (uint16_t *)base + off;
        for (int i = 0; i < c->hd; i++) d[i] = kvl_f32_to_f16(src[i]);
    }
}

void kvl_kv_read(const kvl_kvcache *c, int which, int l, int h, int t0, int t1, float *dst) {
    size_t off = kvl_kv_index(c, l, h, t0), n = (size_t)(t1 - t0) * c->hd;
    const void *base = which ? c->v : c->k;
    if (c->type == KVL_CACHE_F32) {
        memcpy(dst, (const float *)base + off, n * sizeof(float));
    } else {
        const uint16_t *s = (const uint16_t *)base + off;
        for (size_t i = 0; i < n; i++) dst[i] = kvl_f16_to_f32(s[i]);
    }
}

const float *kvl_kv_f32(const kvl_kvcache *c, int which, int l, int h, int t) {
    if (c->type != KVL_CACHE_F32) return NULL;
    return (const float *)(which ? c->v : c->k) + kvl_kv_index(c, l, h, t);
}
