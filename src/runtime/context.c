/* Contexts: parameters, the backend choice, sequence bookkeeping, batches and their validation, micro-batching, and
 * the read accessors (transformers' layout) and views over the backend's caches. */
#include "runtime/context.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

kvl_ctx_params kvl_ctx_default_params(void) {
    kvl_ctx_params p = {.n_ctx = 0, .n_threads = 0, .cache_type = KVL_CACHE_F32, .keep_hidden = false, .n_seq_max = 1,
                        .backend = NULL, .gpu = -1};
    return p;
}

void kvl_ctx_free(kvl_ctx *c) {
    if (!c) return;
    if (c->be && c->st) c->be->ctx_free(c->st);
    free(c->n_pos);
    free(c->views);
    free(c->logits);
    free(c->row_logits);
    kvl_batch_free(&c->one);
    free(c);
}

/* The model's weights on backend be, uploaded by the first context that needs them and kept by the model (a model
 * serves one backend's copy at a time besides the host weights). */
static kvl_status backend_weights(kvl_model *m, const kvl_backend *be, int device, void **out) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    *out = NULL;
    if (!be->weights_init) return KVL_OK;
    kvl_status s = KVL_OK;
    pthread_mutex_lock(&lock);
    if (m->be_weights_owner != be) {
        if (m->be_weights_owner)
            s = kvl_fail(KVL_ERR_UNSUPPORTED, "the model's weights are already on backend %s",
                         ((const kvl_backend *)m->be_weights_owner)->name);
        else if ((s = be->weights_init(m, device, &m->be_weights)) == KVL_OK) {
            m->be_weights_owner = be;
            m->be_weights_free = be->weights_free;
        }
    }
    *out = m->be_weights;
    pthread_mutex_unlock(&lock);
    return s;
}

kvl_status kvl_ctx_new(kvl_model *m, const kvl_ctx_params *p, kvl_ctx **out) {
    if (!out) return kvl_fail(KVL_ERR_ARG, "kvl_ctx_new: NULL argument");
    *out = NULL;
    if (!m) return kvl_fail(KVL_ERR_ARG, "kvl_ctx_new: NULL model");
    const kvl_hparams *hp = &m->hp;
    kvl_ctx_params cp = p ? *p : kvl_ctx_default_params();
    if (cp.n_ctx < 0) return kvl_fail(KVL_ERR_ARG, "n_ctx must not be negative");
    if (cp.n_seq_max < 0 || cp.n_seq_max > 4096)
        return kvl_fail(KVL_ERR_ARG, "n_seq_max %d is outside 0..4096", cp.n_seq_max);
    if (cp.n_threads < 0) return kvl_fail(KVL_ERR_ARG, "n_threads must not be negative");
    if ((unsigned)cp.cache_type > KVL_CACHE_F16) return kvl_fail(KVL_ERR_ARG, "unknown cache type %d", (int)cp.cache_type);
    if (hp->head_dim > 1024) return kvl_fail(KVL_ERR_UNSUPPORTED, "head_dim %d (at most 1024)", hp->head_dim);
    const kvl_backend *be;
    if (cp.gpu < -1) return kvl_fail(KVL_ERR_ARG, "GPU index %d must not be negative", cp.gpu);
    KVL_TRY(kvl_backend_find(cp.backend, &be));
    if (cp.gpu >= 0 && !be->uses_gpu)
        return kvl_fail(KVL_ERR_ARG, "a GPU index (%d) was given, but the backend is %s%s", cp.gpu, be->name,
                        cp.backend && strcmp(cp.backend, "auto") ? "" : " (auto: no GPU backend can run here)");
    kvl_ctx *c = calloc(1, sizeof *c);
    if (!c) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = cp;
    c->be = be;
    c->p.backend = be->name;
    c->n_ctx = cp.n_ctx ? cp.n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    c->n_seq = cp.n_seq_max > 0 ? cp.n_seq_max : 1;
    c->n_pos = calloc(c->n_seq, sizeof *c->n_pos);
    c->views = calloc(c->n_seq, sizeof *c->views);
    kvl_status s = c->n_pos && c->views ? kvl_batch_init(&c->one, KVL_UBATCH) : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int i = 0; s == KVL_OK && i < c->n_seq; i++) c->views[i] = (kvl_view){.c = c, .seq = i};
    void *weights = NULL;
    if (s == KVL_OK) s = backend_weights(m, be, cp.gpu, &weights);
    if (s == KVL_OK) {
        kvl_backend_config bc = {.m = m, .n_ctx = c->n_ctx, .n_seq = c->n_seq, .n_threads = cp.n_threads,
                                 .n_ubatch = KVL_UBATCH, .cache_type = cp.cache_type, .keep_hidden = cp.keep_hidden,
                                 .device = cp.gpu};
        s = be->ctx_init(&bc, weights, &c->st);
    }
    if (s != KVL_OK) {
        kvl_ctx_free(c);
        return s;
    }
    *out = c;
    return KVL_OK;
}

const kvl_model *kvl_ctx_model(const kvl_ctx *c) { return c ? c->m : NULL; }
int kvl_ctx_n_seq(const kvl_ctx *c) { return c ? c->n_seq : 0; }
bool kvl_ctx_has_hidden(const kvl_ctx *c) { return c && c->p.keep_hidden; }
const char *kvl_ctx_backend(const kvl_ctx *c) { return c ? c->be->name : NULL; }
const char *kvl_ctx_device(const kvl_ctx *c) {
    return !c ? NULL : c->be->device ? c->be->device(c->st) : c->be->name;
}
double kvl_ctx_device_bandwidth_gbs(kvl_ctx *c) { return c && c->be->bandwidth_gbs ? c->be->bandwidth_gbs(c->st) : 0; }
int kvl_ctx_n_pos(const kvl_ctx *c) { return c->n_pos[0]; }
int kvl_ctx_n_ctx(const kvl_ctx *c) { return c->n_ctx; }

/* --------------------------------------------------------------------------------------------------------- */

kvl_status kvl_batch_init(kvl_batch *b, int cap) {
    if (!b) return kvl_fail(KVL_ERR_ARG, "kvl_batch_init: NULL batch");
    memset(b, 0, sizeof *b);
    if (cap < 1) return kvl_fail(KVL_ERR_ARG, "a batch needs room for at least one row (%d)", cap);
    b->token = malloc((size_t)cap * sizeof *b->token);
    b->pos = malloc((size_t)cap * sizeof *b->pos);
    b->seq = malloc((size_t)cap * sizeof *b->seq);
    b->logits = malloc((size_t)cap * sizeof *b->logits);
    if (!b->token || !b->pos || !b->seq || !b->logits) {
        kvl_batch_free(b);
        return kvl_fail(KVL_ERR_NOMEM, "cannot allocate a batch of %d rows", cap);
    }
    b->cap = cap;
    return KVL_OK;
}

void kvl_batch_free(kvl_batch *b) {
    if (!b) return;
    free(b->token);
    free(b->pos);
    free(b->seq);
    free(b->logits);
    memset(b, 0, sizeof *b);
}

void kvl_batch_clear(kvl_batch *b) {
    if (b) b->n = 0;
}

kvl_status kvl_batch_add(kvl_batch *b, int32_t token, int32_t pos, int32_t seq, bool logits) {
    if (b->n >= b->cap) return kvl_fail(KVL_ERR_RANGE, "the batch is full (%d rows)", b->cap);
    b->token[b->n] = token;
    b->pos[b->n] = pos;
    b->seq[b->n] = seq;
    b->logits[b->n] = logits ? 1 : 0;
    b->n++;
    return KVL_OK;
}

/* Check every row before anything runs: ids, sequences, positions appending to each sequence, capacity. */
static kvl_status check_batch(const kvl_ctx *c, const kvl_batch *b, int *next) {
    const int V = c->m->hp.n_vocab;
    for (int q = 0; q < c->n_seq; q++) next[q] = c->n_pos[q];
    for (int r = 0; r < b->n; r++) {
        const int q = b->seq[r];
        if (q < 0 || q >= c->n_seq)
            return kvl_fail(KVL_ERR_ARG, "batch row %d: sequence %d is outside the context's %d slots", r, q, c->n_seq);
        if (b->token[r] < 0 || b->token[r] >= V)
            return kvl_fail(KVL_ERR_ARG, "batch row %d: token id %d is outside the vocabulary [0, %d)", r, b->token[r], V);
        if (b->pos[r] != next[q])
            return kvl_fail(KVL_ERR_ARG, "batch row %d: position %d of sequence %d, but the sequence continues at %d", r,
                            b->pos[r], q, next[q]);
        if (next[q] >= c->n_ctx) {
            int n_new = 0;
            for (int j = 0; j < b->n; j++) n_new += b->seq[j] == q;
            return kvl_fail(KVL_ERR_RANGE, "%d tokens do not fit in the context: %d of %d positions are in use", n_new,
                            c->n_pos[q], c->n_ctx);
        }
        next[q]++;
    }
    return KVL_OK;
}

kvl_status kvl_decode(kvl_ctx *c, const kvl_batch *b) {
    if (!c || !b) return kvl_fail(KVL_ERR_ARG, "kvl_decode: NULL argument");
    if (b->n <= 0) return kvl_fail(KVL_ERR_ARG, "nothing to evaluate (0 tokens)");
    int stack_next[64], *next = c->n_seq <= 64 ? stack_next : malloc((size_t)c->n_seq * sizeof *next);
    if (!next) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    kvl_status s = check_batch(c, b, next);
    size_t n_out = 0;
    for (int r = 0; r < b->n; r++) n_out += b->logits[r] != 0;
    const size_t V = (size_t)c->m->hp.n_vocab;
    if (s == KVL_OK && n_out > c->logits_cap) {
        float *l = realloc(c->logits, n_out * V * sizeof(float));
        if (!l) s = kvl_fail(KVL_ERR_NOMEM, "cannot allocate logits for %zu rows", n_out);
        else c->logits = l, c->logits_cap = n_out;
    }
    if (s == KVL_OK && b->n > c->rows_cap) {
        int *rl = realloc(c->row_logits, (size_t)b->n * sizeof *rl);
        if (!rl) s = kvl_fail(KVL_ERR_NOMEM, "out of memory");
        else c->row_logits = rl, c->rows_cap = b->n;
    }
    if (s != KVL_OK) {
        if (next != stack_next) free(next);
        return s;
    }
    c->n_rows = 0;
    c->n_logits = 0;
    int out_row = 0;
    for (int done = 0; s == KVL_OK && done < b->n;) {
        const int nb = b->n - done < KVL_UBATCH ? b->n - done : KVL_UBATCH;
        int nb_out = 0;
        for (int r = done; r < done + nb; r++) nb_out += b->logits[r] != 0;
        kvl_ubatch ub = {.n = nb, .token = b->token + done, .pos = b->pos + done, .seq = b->seq + done,
                         .out = b->logits + done, .n_out = nb_out};
        s = c->be->decode(c->st, &ub, c->logits + (size_t)out_row * V);
        for (int r = done; s == KVL_OK && r < done + nb; r++) {
            c->n_pos[b->seq[r]]++;
            c->row_logits[r] = b->logits[r] ? out_row++ : -1;
        }
        done += nb;
    }
    if (s == KVL_OK) {
        c->n_rows = b->n;
        c->n_logits = out_row;
    } else {
        /* a backend failure mid-way: forget what the failed batch wrote */
        for (int q = 0; q < c->n_seq; q++)
            if (c->n_pos[q] > next[q]) c->n_pos[q] = next[q];
    }
    if (next != stack_next) free(next);
    return s;
}

const float *kvl_batch_logits(const kvl_ctx *c, int row) {
    if (!c || row < 0 || row >= c->n_rows || c->row_logits[row] < 0) return NULL;
    return c->logits + (size_t)c->row_logits[row] * c->m->hp.n_vocab;
}

kvl_status kvl_eval(kvl_ctx *c, const int32_t *tokens, int n, kvl_logits_mode mode) {
    if (!c || (!tokens && n > 0)) return kvl_fail(KVL_ERR_ARG, "kvl_eval: NULL argument");
    if (n <= 0) return kvl_fail(KVL_ERR_ARG, "nothing to evaluate (0 tokens)");
    if (n > c->n_ctx - c->n_pos[0])
        return kvl_fail(KVL_ERR_RANGE, "%d tokens do not fit in the context: %d of %d positions are in use", n,
                        c->n_pos[0], c->n_ctx);
    if (n > c->one.cap) {
        kvl_batch nb;
        KVL_TRY(kvl_batch_init(&nb, n));
        kvl_batch_free(&c->one);
        c->one = nb;
    }
    kvl_batch_clear(&c->one);
    for (int i = 0; i < n; i++)
        kvl_batch_add(&c->one, tokens[i], c->n_pos[0] + i, 0, mode == KVL_LOGITS_ALL || (mode == KVL_LOGITS_LAST && i == n - 1));
    kvl_status s = kvl_decode(c, &c->one);
    if (s == KVL_ERR_ARG) { /* name the token by its index in tokens[] as before (the row is the index) */
        for (int i = 0; i < n; i++)
            if (tokens[i] < 0 || tokens[i] >= c->m->hp.n_vocab)
                return kvl_fail(KVL_ERR_ARG, "token id %d at index %d is outside the vocabulary [0, %d)", tokens[i], i,
                                c->m->hp.n_vocab);
    }
    return s;
}

const float *kvl_logits(const kvl_ctx *c, int i) {
    if (!c || i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}

/* --------------------------------------------------------------------------------------------------------- */

static kvl_status check_seq(const kvl_ctx *c, int seq) {
    if (!c) return kvl_fail(KVL_ERR_ARG, "NULL context");
    if (seq < 0 || seq >= c->n_seq) return kvl_fail(KVL_ERR_ARG, "sequence %d is outside the context's %d slots", seq, c->n_seq);
    return KVL_OK;
}

int kvl_seq_n_pos(const kvl_ctx *c, int seq) { return check_seq(c, seq) ? -1 : c->n_pos[seq]; }

kvl_status kvl_seq_clear(kvl_ctx *c, int seq) {
    if (c && seq == -1) {
        memset(c->n_pos, 0, (size_t)c->n_seq * sizeof *c->n_pos);
        return KVL_OK;
    }
    KVL_TRY(check_seq(c, seq));
    c->n_pos[seq] = 0;
    return KVL_OK;
}

kvl_status kvl_seq_truncate(kvl_ctx *c, int seq, int n_pos) {
    KVL_TRY(check_seq(c, seq));
    if (n_pos < 0 || n_pos > c->n_pos[seq])
        return kvl_fail(KVL_ERR_ARG, "cannot truncate %d positions to %d", c->n_pos[seq], n_pos);
    c->n_pos[seq] = n_pos;
    return KVL_OK;
}

kvl_status kvl_ctx_truncate(kvl_ctx *c, int n_pos) { return kvl_seq_truncate(c, 0, n_pos); }

kvl_status kvl_seq_copy_prefix(kvl_ctx *c, int dst, int src, int n) {
    KVL_TRY(check_seq(c, dst));
    KVL_TRY(check_seq(c, src));
    if (n < 0 || n > c->n_pos[src])
        return kvl_fail(KVL_ERR_ARG, "cannot copy %d positions of sequence %d, which holds %d", n, src, c->n_pos[src]);
    if (dst == src) return kvl_seq_truncate(c, dst, n);
    KVL_TRY(c->be->seq_copy(c->st, dst, src, n));
    c->n_pos[dst] = n;
    return KVL_OK;
}

/* --------------------------------------------------------------------------------------------------------- */

const kvl_view *kvl_seq_view(const kvl_ctx *c, int seq) { return check_seq(c, seq) ? NULL : &c->views[seq]; }
const kvl_model *kvl_view_model(const kvl_view *v) { return v->c->m; }
int kvl_view_seq(const kvl_view *v) { return v->seq; }
int kvl_view_n_pos(const kvl_view *v) { return v->c->n_pos[v->seq]; }
int kvl_view_n_ctx(const kvl_view *v) { return v->c->n_ctx; }
bool kvl_view_has_hidden(const kvl_view *v) { return v->c->p.keep_hidden; }

kvl_status kvl_view_range(const kvl_view *v, int t0, int t1) {
    const int n = v->c->n_pos[v->seq];
    if (t0 < 0 || t1 > n || t0 >= t1)
        return kvl_fail(KVL_ERR_ARG, "position range [%d, %d) is empty or outside the %d filled positions", t0, t1, n);
    return KVL_OK;
}

const float *kvl_view_kv(const kvl_view *v, int which, int layer, int head, int t0, int t1, float *scratch) {
    const kvl_hparams *hp = &v->c->m->hp;
    if ((which != 0 && which != 1) || layer < 0 || layer >= hp->n_layer || head < 0 || head >= hp->n_head_kv || t0 < 0 ||
        t1 < t0 || t1 > v->c->n_ctx) {
        kvl_fail(KVL_ERR_ARG, "no K/V rows for which %d, layer %d, head %d, positions [%d, %d)", which, layer, head, t0, t1);
        return NULL;
    }
    return v->c->be->kv_rows(v->c->st, v->seq, which, layer, head, t0, t1, scratch);
}

const float *kvl_view_hidden(const kvl_view *v, int l, int t0, int t1, float *scratch) {
    if (!v->c->p.keep_hidden || l < 0 || l > v->c->m->hp.n_layer || t0 < 0 || t1 < t0 || t1 > v->c->n_ctx) {
        kvl_fail(KVL_ERR_ARG, "no hidden-state rows for index %d, positions [%d, %d)", l, t0, t1);
        return NULL;
    }
    return v->c->be->hidden_rows(v->c->st, v->seq, l, t0, t1, scratch);
}

kvl_status kvl_view_pool(const kvl_view *v, int which, int layer, int t0, int t1, double *sum) {
    if ((which != 0 && which != 1) || layer < 0 || layer >= v->c->m->hp.n_layer)
        return kvl_fail(KVL_ERR_ARG, "cannot pool which %d of layer %d", which, layer);
    KVL_TRY(kvl_view_range(v, t0, t1));
    v->c->be->pool_kv(v->c->st, v->seq, which, layer, t0, t1, sum);
    return KVL_OK;
}

/* --------------------------------------------------------------------------------------------------------- */

/* The transformers-layout accessors allow an empty range (t0 == t1) as they always did. */
static kvl_status cache_range(const kvl_ctx *c, int seq, int t0, int t1) {
    KVL_TRY(check_seq(c, seq));
    if (t0 == t1 && t0 >= 0 && t0 <= c->n_pos[seq]) return KVL_OK;
    return kvl_view_range(&c->views[seq], t0, t1);
}

static kvl_status cache_rows(const kvl_ctx *c, int seq, int which, int layer, int t0, int t1, float *out) {
    KVL_TRY(check_seq(c, seq));
    const kvl_hparams *hp = &c->m->hp;
    if (layer < 0 || layer >= hp->n_layer) return kvl_fail(KVL_ERR_ARG, "layer %d is outside [0, %d)", layer, hp->n_layer);
    KVL_TRY(cache_range(c, seq, t0, t1));
    const size_t n = (size_t)(t1 - t0) * hp->head_dim;
    for (int h = 0; h < hp->n_head_kv && n; h++) {
        float *dst = out + (size_t)h * n;
        const float *p = c->be->kv_rows(c->st, seq, which, layer, h, t0, t1, dst);
        if (p != dst) memcpy(dst, p, n * sizeof(float));
    }
    return KVL_OK;
}

kvl_status kvl_seq_cache_k(const kvl_ctx *c, int seq, int layer, int t0, int t1, float *out) {
    return cache_rows(c, seq, 0, layer, t0, t1, out);
}
kvl_status kvl_seq_cache_v(const kvl_ctx *c, int seq, int layer, int t0, int t1, float *out) {
    return cache_rows(c, seq, 1, layer, t0, t1, out);
}
kvl_status kvl_cache_k(const kvl_ctx *c, int layer, int t0, int t1, float *out) { return cache_rows(c, 0, 0, layer, t0, t1, out); }
kvl_status kvl_cache_v(const kvl_ctx *c, int layer, int t0, int t1, float *out) { return cache_rows(c, 0, 1, layer, t0, t1, out); }

kvl_status kvl_seq_hidden(const kvl_ctx *c, int seq, int l, int t0, int t1, float *out) {
    KVL_TRY(check_seq(c, seq));
    if (!c->p.keep_hidden) return kvl_fail(KVL_ERR_ARG, "hidden states were not kept (create the context with keep_hidden)");
    if (l < 0 || l > c->m->hp.n_layer) return kvl_fail(KVL_ERR_ARG, "hidden-state index %d is outside [0, %d]", l, c->m->hp.n_layer);
    KVL_TRY(cache_range(c, seq, t0, t1));
    const size_t n = (size_t)(t1 - t0) * c->m->hp.n_embd;
    if (!n) return KVL_OK;
    const float *p = c->be->hidden_rows(c->st, seq, l, t0, t1, out);
    if (p != out) memcpy(out, p, n * sizeof(float));
    return KVL_OK;
}
kvl_status kvl_hidden(const kvl_ctx *c, int l, int t0, int t1, float *out) { return kvl_seq_hidden(c, 0, l, t0, t1, out); }
