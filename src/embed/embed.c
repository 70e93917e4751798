/* Embedding token sequences: one prefill, then every requested representation read from the same cache. Several
 * texts go through one batch (each in its own sequence), so the weights are read once per micro-batch for all. */
#include <stdlib.h>

#include "util/error.h"

kvl_status kvl_embed_many(kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const kvl_embed_item *items, int n,
                          kvl_truncate truncate, int *failed) {
    if (failed) *failed = -1;
    if (!c || !cfgs || n_cfg <= 0 || !items || n < 1) return kvl_fail(KVL_ERR_ARG, "kvl_embed_many: bad argument");
    if (n > kvl_ctx_n_seq(c))
        return kvl_fail(KVL_ERR_ARG, "%d texts at once, but the context has %d sequences", n, kvl_ctx_n_seq(c));
    const int n_ctx = kvl_ctx_n_ctx(c);
    const kvl_model *m = kvl_ctx_model(c);
    bool need_forward = false;
    for (int j = 0; j < n_cfg; j++) {
        int dim;
        KVL_TRY(kvl_repr_dim(m, &cfgs[j], &dim));
        if (cfgs[j].source != KVL_SOURCE_RANDOM) need_forward = true;
        if (cfgs[j].source == KVL_SOURCE_HIDDEN && !kvl_ctx_has_hidden(c))
            return kvl_fail(KVL_ERR_ARG, "source hidden needs hidden states (create the context with keep_hidden)");
    }
    /* the tokens each text keeps */
    int *from = malloc((size_t)n * 2 * sizeof *from), *len = from + n;
    if (!from) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    size_t rows = 0;
    kvl_status s = KVL_OK;
    for (int i = 0; i < n && !s; i++) {
        const kvl_embed_item *it = &items[i];
        from[i] = 0;
        len[i] = it->n;
        if (it->n <= 0 || !it->ids || !it->out) {
            s = kvl_fail(KVL_ERR_ARG, it->n <= 0 ? "cannot embed an empty sequence" : "kvl_embed_many: NULL item field");
        } else if (it->n > n_ctx) {
            if (truncate == KVL_TRUNCATE_LEFT) from[i] = it->n - n_ctx;
            else if (truncate != KVL_TRUNCATE_RIGHT)
                s = kvl_fail(KVL_ERR_RANGE, "sequence of %d tokens is longer than the context (%d positions); "
                                            "truncate it or use a larger context", it->n, n_ctx);
            len[i] = n_ctx;
        }
        const int V = kvl_model_hparams(m)->n_vocab;
        for (int t = 0; !s && t < len[i]; t++) {
            const int32_t id = it->ids[from[i] + t];
            if (id < 0 || id >= V)
                s = kvl_fail(KVL_ERR_ARG, "token id %d at index %d is outside the vocabulary [0, %d)", id, from[i] + t, V);
        }
        if (s && failed) *failed = i;
        rows += (size_t)len[i];
    }
    if (!s && need_forward) {
        kvl_batch b;
        s = rows > (size_t)1 << 30 ? kvl_fail(KVL_ERR_RANGE, "too many tokens at once") : kvl_batch_init(&b, (int)rows);
        if (!s) {
            for (int i = 0; i < n && !s; i++) {
                s = kvl_seq_clear(c, i);
                for (int t = 0; t < len[i] && !s; t++) s = kvl_batch_add(&b, items[i].ids[from[i] + t], t, i, false);
            }
            if (!s) s = kvl_decode(c, &b);
            kvl_batch_free(&b);
        }
    }
    for (int i = 0; i < n && !s; i++) {
        const kvl_embed_item *it = &items[i];
        for (int j = 0; j < n_cfg && !s; j++) {
            if (cfgs[j].source == KVL_SOURCE_RANDOM) {
                int dim;
                kvl_repr_dim(m, &cfgs[j], &dim);
                if (it->key) kvl_repr_random(it->key, it->key_len, dim, it->out[j]);
                else kvl_repr_random(it->ids + from[i], (size_t)len[i] * sizeof *it->ids, dim, it->out[j]);
            } else {
                s = kvl_repr_compute(kvl_seq_view(c, i), &cfgs[j], 0, len[i], it->out[j]);
            }
        }
        if (s && failed) *failed = i;
    }
    free(from);
    return s;
}

kvl_status kvl_embed_ids(kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int32_t *ids, int n,
                         kvl_truncate truncate, const void *key, size_t key_len, float *const *out) {
    if (!c || !cfgs || n_cfg <= 0 || !out || (n > 0 && !ids)) return kvl_fail(KVL_ERR_ARG, "kvl_embed_ids: bad argument");
    if (n <= 0) return kvl_fail(KVL_ERR_ARG, "cannot embed an empty sequence");
    const kvl_embed_item it = {.ids = ids, .n = n, .key = key, .key_len = key_len, .out = out};
    return kvl_embed_many(c, cfgs, n_cfg, &it, 1, truncate, NULL);
}
