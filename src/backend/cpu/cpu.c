/* The CPU backend: host-memory caches (one per sequence slot), the forward pass of forward.c, and reads, pooling and
 * prefix copies straight from the caches. Weights are used in place (memory-mapped or in huge-page memory). */
#include "backend/cpu/cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static bool cpu_available(void) { return true; }

static void cpu_ctx_free(void *state) {
    kvl_cpu_state *c = state;
    if (!c) return;
    for (int s = 0; c->kv && s < c->cfg.n_seq; s++) kvl_kvcache_free(&c->kv[s]);
    for (int s = 0; c->hidden && s < c->cfg.n_seq; s++) free(c->hidden[s]);
    free(c->kv);
    free(c->hidden);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->gate);
    free(c->up);
    free(c->att_scratch);
    free(c->att_q);
    free(c->att_s);
    free(c->att_k);
    free(c->att_vt);
    free(c->att_v);
    free(c->att_o);
    free(c->rope_cs);
    free(c->runs);
    free(c->short_rows);
    free(c);
}

static kvl_status cpu_ctx_init(const kvl_backend_config *cfg, void *weights, void **out) {
    (void)weights;
    *out = NULL;
    const kvl_hparams *hp = kvl_model_hparams(cfg->m);
    kvl_cpu_state *c = calloc(1, sizeof *c);
    if (!c) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    c->m = cfg->m;
    c->cfg = *cfg;
    c->n_ctx = cfg->n_ctx;
    c->n_threads = cfg->n_threads > 0 ? cfg->n_threads : omp_get_num_procs();
    const int H = hp->n_embd, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim, hd = hp->head_dim;
    c->ub = cfg->n_ubatch;
    size_t ub = c->ub;
    int wide = qd > H ? qd : H;
    c->x = malloc(ub * H * sizeof(float));
    c->xn = malloc(ub * wide * sizeof(float));
    c->q = malloc(ub * qd * sizeof(float));
    c->k = malloc(ub * kvd * sizeof(float));
    c->v = malloc(ub * kvd * sizeof(float));
    c->gate = malloc(ub * hp->n_ff * sizeof(float));
    c->up = malloc(ub * hp->n_ff * sizeof(float));
    c->att_stride = (size_t)c->n_ctx * (1 + 2 * hd);
    c->att_scratch = malloc(c->n_threads * c->att_stride * sizeof(float));
    c->att_q = malloc(ub * hd * sizeof(float));
    c->att_s = malloc(ub * c->n_ctx * sizeof(float));
    c->att_k = malloc((size_t)c->n_ctx * hd * sizeof(float));
    c->att_vt = malloc((size_t)c->n_ctx * hd * sizeof(float));
    if (cfg->cache_type != KVL_CACHE_F32) c->att_v = malloc((size_t)c->n_ctx * hd * sizeof(float));
    c->att_o = malloc(ub * hd * sizeof(float));
    c->rope_cs = malloc(ub * hd * sizeof(float));
    c->runs = malloc((ub + 1) * sizeof(int));
    c->short_rows = malloc(ub * sizeof(int));
    c->kv = calloc(cfg->n_seq, sizeof *c->kv);
    if (cfg->keep_hidden) c->hidden = calloc(cfg->n_seq, sizeof *c->hidden);
    kvl_status s = KVL_OK;
    if (!c->x || !c->xn || !c->q || !c->k || !c->v || !c->gate || !c->up || !c->att_scratch || !c->att_q ||
        !c->att_s || !c->att_k || !c->att_vt || !c->att_o || !c->rope_cs || !c->runs || !c->short_rows || !c->kv ||
        (cfg->cache_type != KVL_CACHE_F32 && !c->att_v) || (cfg->keep_hidden && !c->hidden))
        s = kvl_fail(KVL_ERR_NOMEM, "cannot allocate buffers for a context of %d positions", c->n_ctx);
    /* calloc'd slots: pages are only used once positions are written */
    for (int q = 0; s == KVL_OK && q < cfg->n_seq; q++) {
        s = kvl_kvcache_init(&c->kv[q], cfg->cache_type, hp->n_layer, hp->n_head_kv, c->n_ctx, hd);
        if (s == KVL_OK && cfg->keep_hidden) {
            c->hidden[q] = calloc((size_t)(hp->n_layer + 1) * c->n_ctx * H, sizeof(float));
            if (!c->hidden[q]) s = kvl_fail(KVL_ERR_NOMEM, "cannot allocate hidden states for %d positions", c->n_ctx);
        }
    }
    if (s != KVL_OK) {
        cpu_ctx_free(c);
        return s;
    }
    *out = c;
    return KVL_OK;
}

static const float *cpu_kv_rows(void *state, int seq, int which, int layer, int head, int t0, int t1, float *scratch) {
    kvl_cpu_state *c = state;
    const kvl_kvcache *kv = &c->kv[seq];
    const float *p = kvl_kv_f32(kv, which, layer, head, t0);
    if (p) return p;
    kvl_kv_read(kv, which, layer, head, t0, t1, scratch);
    return scratch;
}

static const float *cpu_hidden_rows(void *state, int seq, int l, int t0, int t1, float *scratch) {
    (void)t1;
    (void)scratch;
    kvl_cpu_state *c = state;
    if (!c->hidden) return NULL;
    return c->hidden[seq] + ((size_t)l * c->n_ctx + t0) * c->m->hp.n_embd;
}

static void cpu_pool_kv(void *state, int seq, int which, int layer, int t0, int t1, double *sum) {
    kvl_cpu_state *c = state;
    const kvl_kvcache *kv = &c->kv[seq];
    const int hd = kv->hd;
    float row[1024];
    for (int h = 0; h < kv->n_kv; h++) {
        double *d = sum + (size_t)h * hd;
        memset(d, 0, hd * sizeof *d);
        const float *p = kvl_kv_f32(kv, which, layer, h, t0); /* rows of one head are contiguous */
        for (int t = t0; t < t1; t++) {
            const float *r = p ? p + (size_t)(t - t0) * hd : row;
            if (!p) kvl_kv_read(kv, which, layer, h, t, t + 1, row);
            for (int i = 0; i < hd; i++) d[i] += r[i];
        }
    }
}

static kvl_status cpu_seq_copy(void *state, int dst, int src, int n) {
    kvl_cpu_state *c = state;
    if (dst == src || n <= 0) return KVL_OK;
    const kvl_kvcache *a = &c->kv[src];
    kvl_kvcache *b = &c->kv[dst];
    const size_t es = a->type == KVL_CACHE_F16 ? 2 : 4, row = (size_t)n * a->hd * es;
    for (int l = 0; l < a->n_layer; l++)
        for (int h = 0; h < a->n_kv; h++) {
            const size_t off = kvl_kv_index(a, l, h, 0) * es;
            memcpy((char *)b->k + off, (const char *)a->k + off, row);
            memcpy((char *)b->v + off, (const char *)a->v + off, row);
        }
    if (c->hidden) {
        const int H = c->m->hp.n_embd;
        for (int l = 0; l <= c->m->hp.n_layer; l++)
            memcpy(c->hidden[dst] + (size_t)l * c->n_ctx * H, c->hidden[src] + (size_t)l * c->n_ctx * H,
                   (size_t)n * H * sizeof(float));
    }
    return KVL_OK;
}

static kvl_status cpu_sync(void *state) {
    (void)state;
    return KVL_OK;
}

const kvl_backend kvl_backend_cpu = {
    .name = "cpu",
    .available = cpu_available,
    .weights_init = NULL,
    .weights_free = NULL,
    .ctx_init = cpu_ctx_init,
    .ctx_free = cpu_ctx_free,
    .decode = kvl_cpu_decode,
    .kv_rows = cpu_kv_rows,
    .hidden_rows = cpu_hidden_rows,
    .pool_kv = cpu_pool_kv,
    .seq_copy = cpu_seq_copy,
    .sync = cpu_sync,
};
