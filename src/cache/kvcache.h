/* kvcache.h - the KV cache as a plain addressable array, in transformers' layout:
 * k[layer][kv_head][position][head_dim] (and v likewise), f32 or f16. K is stored after q/k-norm and RoPE, in
 * half-split rotary order (for llama files the forward pass undoes the converter's row permutation first). */
#ifndef KVL_KVCACHE_H
#define KVL_KVCACHE_H
#include <stddef.h>
#include <stdint.h>

#include "kvlens.h"

typedef struct {
    kvl_cache_type type;
    int n_layer, n_kv, n_ctx, hd;
    void *k, *v;            /* [n_layer][n_kv][n_ctx][hd] elements of `type` */
} kvl_kvcache;

kvl_status kvl_kvcache_init(kvl_kvcache *c, kvl_cache_type type, int n_layer, int n_kv, int n_ctx, int hd);
void kvl_kvcache_free(kvl_kvcache *c);
size_t kvl_kvcache_bytes(const kvl_kvcache *c);

/* Element offset of (layer, head, pos, 0). */
static inline size_t kvl_kv_index(const kvl_kvcache *c, int l, int h, int t) {
    return (((size_t)l * c->n_kv + h) * c->n_ctx + t) * c->hd;
}
/* Store one head_dim row; read rows [t0, t1) of one head as f32. which: 0 = K, 1 = V. */
void kvl_kv_store(kvl_kvcache *c, int which, int l, int h, int t, const float *src);
void kvl_kv_read(const kvl_kvcache *c, int which, int l, int h, int t0, int t1, float *dst);
/* f32 caches: direct pointer to rows of one head (NULL for f16 caches). */
const float *kvl_kv_f32(const kvl_kvcache *c, int which, int l, int h, int t);
#endif
