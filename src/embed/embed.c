/* Embedding one token sequence: one prefill, then every requested representation read from the same cache. */
#include <stdlib.h>

#include "util/error.h"

kvl_status kvl_embed_ids(kvl_ctx *c, const kvl_repr_config *cfgs, int n_cfg, const int32_t *ids, int n,
                         kvl_truncate truncate, const void *key, size_t key_len, float *const *out) {
    if (!c || !cfgs || n_cfg <= 0 || !out || (n > 0 && !ids)) return kvl_fail(KVL_ERR_ARG, "kvl_embed_ids: bad argument");
    if (n <= 0) return kvl_fail(KVL_ERR_ARG, "cannot embed an empty sequence");
    const int n_ctx = kvl_ctx_n_ctx(c);
    const kvl_model *m = kvl_ctx_model(c);
    if (n > n_ctx) {
        if (truncate == KVL_TRUNCATE_LEFT) {
            ids += n - n_ctx;
        } else if (truncate != KVL_TRUNCATE_RIGHT) {
            return kvl_fail(KVL_ERR_RANGE, "sequence of %d tokens is longer than the context (%d positions); "
                                           "truncate it or use a larger context", n, n_ctx);
        }
        n = n_ctx;
    }
    bool need_forward = false;
    for (int i = 0; i < n_cfg; i++) {
        int dim;
        KVL_TRY(kvl_repr_dim(m, &cfgs[i], &dim));
        if (cfgs[i].source != KVL_SOURCE_RANDOM) need_forward = true;
        if (cfgs[i].source == KVL_SOURCE_HIDDEN && !kvl_ctx_has_hidden(c))
            return kvl_fail(KVL_ERR_ARG, "source hidden needs hidden states (create the context with keep_hidden)");
    }
    if (need_forward) {
        KVL_TRY(kvl_ctx_truncate(c, 0));
        KVL_TRY(kvl_eval(c, ids, n, KVL_LOGITS_NONE));
    }
    for (int i = 0; i < n_cfg; i++) {
        if (cfgs[i].source == KVL_SOURCE_RANDOM) {
            int dim;
            KVL_TRY(kvl_repr_dim(m, &cfgs[i], &dim));
            if (key) kvl_repr_random(key, key_len, dim, out[i]);
            else kvl_repr_random(ids, (size_t)n * sizeof *ids, dim, out[i]);
        } else {
            KVL_TRY(kvl_repr_compute(kvl_seq_view(c, 0), &cfgs[i], 0, n, out[i]));
        }
    }
    return KVL_OK;
}
