/* The transformer forward pass shared by llama, qwen2 and qwen3 (pre-norm decoder, GQA, SwiGLU):
 *   x = embed(tokens)
 *   per layer: x += Wo * attn(rope(norm_qk(Wq n(x) + bq)), rope(norm_qk(Wk n(x) + bk)), Wv n(x) + bv)
 *              x += Wdown * (silu(Wgate n(x)) * Wup n(x))
 *   logits = Wout * n(x)
 * Prompts run as matrices of up to KVL_UBATCH tokens; every weight product goes through kvl_matmul. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "compute/matmul.h"
#include "compute/ops.h"
#include "forward/context.h"
#include "util/error.h"

kvl_ctx_params kvl_ctx_default_params(void) {
    kvl_ctx_params p = {.n_ctx = 0, .n_threads = 0, .cache_type = KVL_CACHE_F32, .keep_hidden = false};
    return p;
}

void kvl_ctx_free(kvl_ctx *c) {
    if (!c) return;
    kvl_kvcache_free(&c->kv);
    free(c->hidden);
    free(c->logits);
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
    free(c);
}

kvl_status kvl_ctx_new(kvl_model *m, const kvl_ctx_params *p, kvl_ctx **out) {
    *out = NULL;
    const kvl_hparams *hp = &m->hp;
    kvl_ctx *c = calloc(1, sizeof *c);
    if (!c) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = p ? *p : kvl_ctx_default_params();
    if (c->p.n_ctx < 0) {
        free(c);
        return kvl_fail(KVL_ERR_ARG, "n_ctx must not be negative");
    }
    c->n_ctx = c->p.n_ctx ? c->p.n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    c->n_threads = c->p.n_threads > 0 ? c->p.n_threads : omp_get_num_procs();
    const int H = hp->n_embd, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    c->ub = KVL_UBATCH;
    size_t ub = c->ub;
    int wide = qd > H ? qd : H;
    c->x = malloc(ub * H * sizeof(float));
    c->xn = malloc(ub * wide * sizeof(float));
    c->q = malloc(ub * qd * sizeof(float));
    c->k = malloc(ub * kvd * sizeof(float));
    c->v = malloc(ub * kvd * sizeof(float));
    c->gate = malloc(ub * hp->n_ff * sizeof(float));
    c->up = malloc(ub * hp->n_ff * sizeof(float));
    c->att_stride = (size_t)c->n_ctx * (1 + 2 * hp->head_dim);
    c->att_scratch = malloc(c->n_threads * c->att_stride * sizeof(float));
    c->att_q = malloc(ub * hp->head_dim * sizeof(float));
    c->att_s = malloc(ub * c->n_ctx * sizeof(float));
    c->att_k = malloc((size_t)c->n_ctx * hp->head_dim * sizeof(float));
    c->att_vt = malloc((size_t)c->n_ctx * hp->head_dim * sizeof(float));
    if (c->p.cache_type != KVL_CACHE_F32) c->att_v = malloc((size_t)c->n_ctx * hp->head_dim * sizeof(float));
    c->att_o = malloc(ub * hp->head_dim * sizeof(float));
    c->rope_cs = malloc(ub * hp->head_dim * sizeof(float));
    if (c->p.keep_hidden) c->hidden = malloc((size_t)(hp->n_layer + 1) * c->n_ctx * H * sizeof(float));
    kvl_status s = KVL_OK;
    if (!c->x || !c->xn || !c->q || !c->k || !c->v || !c->gate || !c->up || !c->att_scratch || !c->att_q ||
        !c->att_s || !c->att_k || !c->att_vt || !c->att_o || !c->rope_cs || (c->p.cache_type != KVL_CACHE_F32 && !c->att_v) ||
        (c->p.keep_hidden && !c->hidden))
        s = kvl_fail(KVL_ERR_NOMEM, "cannot allocate buffers for a context of %d positions", c->n_ctx);
    if (s == KVL_OK) s = kvl_kvcache_init(&c->kv, c->p.cache_type, hp->n_layer, hp->n_head_kv, c->n_ctx, hp->head_dim);
    if (s != KVL_OK) {
        kvl_ctx_free(c);
        return s;
    }
    *out = c;
    return KVL_OK;
}

int kvl_ctx_n_pos(const kvl_ctx *c) { return c->n_pos; }
int kvl_ctx_n_ctx(const kvl_ctx *c) { return c->n_ctx; }

kvl_status kvl_ctx_truncate(kvl_ctx *c, int n_pos) {
    if (n_pos < 0 || n_pos > c->n_pos) return kvl_fail(KVL_ERR_ARG, "cannot truncate %d positions to %d", c->n_pos, n_pos);
    c->n_pos = n_pos;
    return KVL_OK;
}

const float *kvl_logits(const kvl_ctx *c, int i) {
    if (i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}

/* llama GGUF files store Q/K rows with each head's rotary halves interleaved ([x0, y0, x1, y1, ...]); put them back
 * in transformers' half-split order ([x0, x1, ..., y0, y1, ...]) so the cache equals HF's. */
static void deinterleave_heads(float *v, int n_heads, int hd, float *tmp) {
    const int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *r = v + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            tmp[i] = r[2 * i];
            tmp[half + i] = r[2 * i + 1];
        }
        memcpy(r, tmp, hd * sizeof(float));
    }
}

/* Causal attention of n query rows at positions p0.. against the cache (which already holds them). Output
 * [n][n_head*hd] into out. Work is split over (kv head, query row) pairs. */
static void attention(kvl_ctx *c, int il, int n, int p0, float *out) {
    const kvl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, grp = nh / nkv, qd = nh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const int n_keys = p0 + n;
#pragma omp parallel num_threads(c->n_threads)
    {
        float *scr = c->att_scratch + (size_t)omp_get_thread_num() * c->att_stride;
        float *scores = scr, *kbuf = scr + c->n_ctx, *vbuf = kbuf + (size_t)c->n_ctx * hd;
        int cached_head = -1;
        const float *K = NULL, *V = NULL;
#pragma omp for schedule(dynamic, 1) collapse(2)
        for (int g = 0; g < nkv; g++) {
            for (int t = 0; t < n; t++) {
                if (cached_head != g) {
                    K = kvl_kv_f32(&c->kv, 0, il, g, 0);
                    V = kvl_kv_f32(&c->kv, 1, il, g, 0);
                    if (!K) {
                        kvl_kv_read(&c->kv, 0, il, g, 0, n_keys, kbuf);
                        kvl_kv_read(&c->kv, 1, il, g, 0, n_keys, vbuf);
                        K = kbuf;
                        V = vbuf;
                    }
                    cached_head = g;
                }
                const int nk = p0 + t + 1;
                for (int hh = 0; hh < grp; hh++) {
                    const int h = g * grp + hh;
                    const float *qv = c->q + (size_t)t * qd + (size_t)h * hd;
                    for (int j = 0; j < nk; j++) scores[j] = kvl_dot(qv, K + (size_t)j * hd, hd) * scale;
                    kvl_softmax(scores, nk);
                    float *o = out + (size_t)t * qd + (size_t)h * hd;
                    memset(o, 0, hd * sizeof(float));
                    for (int j = 0; j < nk; j++) kvl_axpy(o, scores[j], V + (size_t)j * hd, hd);
                }
            }
        }
    }
}

/* The same for a batch of query rows, as two matrix products per KV head through kvl_matmul:
 * S = (scale Q) K^T over all n_keys positions, causal mask + softmax per row, O = S V. The masked half of the last
 * block is computed and discarded: cheaper than the row-by-row path once rows share keys. */
static void attention_gemm(kvl_ctx *c, int il, int n, int p0, float *out) {
    const kvl_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, grp = nh / nkv, qd = nh * hd;
    const int n_keys = p0 + n;
    const float scale = 1.0f / sqrtf((float)hd);
    int rows = c->ub / grp < 128 ? c->ub / grp : 128; /* query rows per product: grp * rows <= ub; 128 keeps the causal waste small */
    if (rows < 1) rows = 1;
    for (int g = 0; g < nkv; g++) {
        const float *K = kvl_kv_f32(&c->kv, 0, il, g, 0);
        if (!K) {
            kvl_kv_read(&c->kv, 0, il, g, 0, n_keys, c->att_k);
            K = c->att_k;
        }
        const float *V = kvl_kv_f32(&c->kv, 1, il, g, 0);
        if (!V) {
            kvl_kv_read(&c->kv, 1, il, g, 0, n_keys, c->att_v);
            V = c->att_v;
        }
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
        for (int d = 0; d < hd; d++)
            for (int j = 0; j < n_keys; j++) c->att_vt[(size_t)d * n_keys + j] = V[(size_t)j * hd + d];
        for (int r0 = 0; r0 < n; r0 += rows) {
            const int nr = n - r0 < rows ? n - r0 : rows, m = grp * nr;
            /* causal: these rows see only the keys up to their last position */
            const int nk = p0 + r0 + nr;
            const kvl_weight Kw = {.type = KVL_TYPE_F32, .n_in = hd, .n_out = nk, .row_bytes = hd * sizeof(float), .data = K};
            const kvl_weight Vw = {.type = KVL_TYPE_F32, .n_in = nk, .n_out = hd, .row_bytes = n_keys * sizeof(float),
                                   .data = c->att_vt};
#pragma omp parallel for num_threads(c->n_threads) schedule(static) collapse(2)
            for (int hh = 0; hh < grp; hh++)
                for (int t = 0; t < nr; t++) {
                    const float *src = c->q + (size_t)(r0 + t) * qd + (size_t)(g * grp + hh) * hd;
                    float *dst = c->att_q + (size_t)(hh * nr + t) * hd;
                    for (int d = 0; d < hd; d++) dst[d] = src[d] * scale;
                }
            kvl_matmul(c->att_s, c->att_q, &Kw, m);
#pragma omp parallel for num_threads(c->n_threads) schedule(static)
            for (int r = 0; r < m; r++) {
                float *srow = c->att_s + (size_t)r * nk;
                const int valid = p0 + r0 + r % nr + 1;
                kvl_softmax(srow, valid);
                memset(srow + valid, 0, (size_t)(nk - valid) * sizeof(float));
            }
            kvl_matmul(c->att_o, c->att_s, &Vw, m);
            for (int hh = 0; hh < grp; hh++)
                for (int t = 0; t < nr; t++)
                    memcpy(out + (size_t)(r0 + t) * qd + (size_t)(g * grp + hh) * hd, c->att_o + (size_t)(hh * nr + t) * hd,
                           hd * sizeof(float));
        }
    }
}

static void store_hidden(kvl_ctx *c, int l, int p0, int n, const float *src) {
    if (!c->hidden) return;
    const int H = c->m->hp.n_embd;
    memcpy(c->hidden + ((size_t)l * c->n_ctx + p0) * H, src, (size_t)n * H * sizeof(float));
}

/* Per-token steps run over OpenMP threads when there are enough tokens to pay for the fork. */
#define PAR_TOKENS 4

/* q/k-norm, RoPE and the cache store of one token's q, k, v (row t of the micro-batch at position pos). */
static void qkv_token(kvl_ctx *c, const kvl_layer *ly, int il, int t, int pos) {
    const kvl_model *m = c->m;
    const kvl_hparams *hp = &m->hp;
    const int hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, qd = nh * hd, kvd = nkv * hd;
    float *qt = c->q + (size_t)t * qd, *kt = c->k + (size_t)t * kvd, *vt = c->v + (size_t)t * kvd;
    const float *cs = c->rope_cs + (size_t)t * hd;
    float tmp[1024];
    if (m->qk_interleaved) {
        deinterleave_heads(qt, nh, hd, tmp);
        deinterleave_heads(kt, nkv, hd, tmp);
    }
    for (int h = 0; h < nh; h++) {
        if (ly->q_norm) kvl_rmsnorm(qt + h * hd, qt + h * hd, ly->q_norm, hd, hp->norm_eps);
        kvl_rope_cs(qt + h * hd, hd, cs);
    }
    for (int h = 0; h < nkv; h++) {
        if (ly->k_norm) kvl_rmsnorm(kt + h * hd, kt + h * hd, ly->k_norm, hd, hp->norm_eps);
        kvl_rope_cs(kt + h * hd, hd, cs);
        kvl_kv_store(&c->kv, 0, il, h, pos, kt + h * hd);
        kvl_kv_store(&c->kv, 1, il, h, pos, vt + h * hd);
    }
}

/* One micro-batch of n tokens at positions p0..p0+n-1. Logits for rows [logit_from, n) go to logits_out. */
static void forward_ubatch(kvl_ctx *c, const int32_t *tok, int n, int p0, int logit_from, float *logits_out) {
    const kvl_model *m = c->m;
    const kvl_hparams *hp = &m->hp;
    const int H = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, F = hp->n_ff;
    const int qd = nh * hd, kvd = nkv * hd, L = hp->n_layer;
    const int par = n >= PAR_TOKENS;

#pragma omp parallel for if (par)
    for (int t = 0; t < n; t++) {
        kvl_weight_row(&m->tok_embd, tok[t], c->x + (size_t)t * H);
        kvl_rope_table(c->rope_cs + (size_t)t * hd, hd, p0 + t, m->inv_freq);
    }
    store_hidden(c, 0, p0, n, c->x);

    for (int il = 0; il < L; il++) {
        const kvl_layer *ly = &m->layers[il];
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++)
            kvl_rmsnorm(c->xn + (size_t)t * H, c->x + (size_t)t * H, ly->attn_norm, H, hp->norm_eps);
        float *qkv_out[3] = {c->q, c->k, c->v};
        const kvl_weight *qkv_w[3] = {&ly->wq, &ly->wk, &ly->wv};
        kvl_matmul_multi(qkv_out, c->xn, qkv_w, 3, n);
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) {
            if (ly->bq) {
                kvl_axpy(c->q + (size_t)t * qd, 1.0f, ly->bq, qd);
                kvl_axpy(c->k + (size_t)t * kvd, 1.0f, ly->bk, kvd);
                kvl_axpy(c->v + (size_t)t * kvd, 1.0f, ly->bv, kvd);
            }
            qkv_token(c, ly, il, t, p0 + t);
        }
        if (n >= 16) attention_gemm(c, il, n, p0, c->xn);
        else attention(c, il, n, p0, c->xn);
        kvl_matmul(c->gate, c->xn, &ly->wo, n); /* gate is free here: use it for the projection */
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) {
            kvl_axpy(c->x + (size_t)t * H, 1.0f, c->gate + (size_t)t * H, H);
            kvl_rmsnorm(c->xn + (size_t)t * H, c->x + (size_t)t * H, ly->ffn_norm, H, hp->norm_eps);
        }
        float *ffn_out[2] = {c->gate, c->up};
        const kvl_weight *ffn_w[2] = {&ly->w_gate, &ly->w_up};
        kvl_matmul_multi(ffn_out, c->xn, ffn_w, 2, n);
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) kvl_swiglu(c->gate + (size_t)t * F, c->up + (size_t)t * F, F);
        kvl_matmul(c->xn, c->gate, &ly->w_down, n);
#pragma omp parallel for if (par)
        for (int t = 0; t < n; t++) kvl_axpy(c->x + (size_t)t * H, 1.0f, c->xn + (size_t)t * H, H);
        if (il + 1 < L) store_hidden(c, il + 1, p0, n, c->x);
    }
#pragma omp parallel for if (par)
    for (int t = 0; t < n; t++) kvl_rmsnorm(c->x + (size_t)t * H, c->x + (size_t)t * H, m->output_norm, H, hp->norm_eps);
    store_hidden(c, L, p0, n, c->x);
    if (logit_from < n) kvl_matmul(logits_out, c->x + (size_t)logit_from * H, &m->output, n - logit_from);
}

kvl_status kvl_eval(kvl_ctx *c, const int32_t *tokens, int n, kvl_logits_mode mode) {
    const kvl_hparams *hp = &c->m->hp;
    if (n <= 0) return kvl_fail(KVL_ERR_ARG, "nothing to evaluate (0 tokens)");
    if (n > c->n_ctx - c->n_pos)
        return kvl_fail(KVL_ERR_RANGE, "%d tokens do not fit in the context: %d of %d positions are in use", n, c->n_pos,
                        c->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return kvl_fail(KVL_ERR_ARG, "token id %d at index %d is outside the vocabulary [0, %d)", tokens[i], i,
                            hp->n_vocab);
    size_t rows = mode == KVL_LOGITS_ALL ? (size_t)n : mode == KVL_LOGITS_LAST ? 1 : 0;
    if (rows > c->logits_cap) {
        float *l = realloc(c->logits, rows * hp->n_vocab * sizeof(float));
        if (!l) return kvl_fail(KVL_ERR_NOMEM, "cannot allocate logits for %zu rows", rows);
        c->logits = l;
        c->logits_cap = rows;
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(c->n_threads);
    for (int done = 0; done < n;) {
        int nb = n - done < c->ub ? n - done : c->ub;
        int last_batch = done + nb == n;
        int from = mode == KVL_LOGITS_ALL ? 0 : (mode == KVL_LOGITS_LAST && last_batch ? nb - 1 : nb);
        float *lo = mode == KVL_LOGITS_ALL ? c->logits + (size_t)done * hp->n_vocab : c->logits;
        forward_ubatch(c, tokens + done, nb, c->n_pos, from, lo);
        c->n_pos += nb;
        done += nb;
    }
    omp_set_num_threads(saved);
    c->n_logits = (int)rows;
    return KVL_OK;
}

/* --------------------------------------------------------------------------------------------------------- */

static kvl_status check_range(const kvl_ctx *c, int t0, int t1) {
    if (t0 < 0 || t1 < t0 || t1 > c->n_pos)
        return kvl_fail(KVL_ERR_ARG, "position range [%d, %d) is outside the %d filled positions", t0, t1, c->n_pos);
    return KVL_OK;
}

static kvl_status cache_view(const kvl_ctx *c, int which, int layer, int t0, int t1, float *out) {
    if (layer < 0 || layer >= c->m->hp.n_layer)
        return kvl_fail(KVL_ERR_ARG, "layer %d is outside [0, %d)", layer, c->m->hp.n_layer);
    KVL_TRY(check_range(c, t0, t1));
    for (int h = 0; h < c->kv.n_kv; h++)
        kvl_kv_read(&c->kv, which, layer, h, t0, t1, out + (size_t)h * (t1 - t0) * c->kv.hd);
    return KVL_OK;
}

kvl_status kvl_cache_k(const kvl_ctx *c, int layer, int t0, int t1, float *out) { return cache_view(c, 0, layer, t0, t1, out); }
kvl_status kvl_cache_v(const kvl_ctx *c, int layer, int t0, int t1, float *out) { return cache_view(c, 1, layer, t0, t1, out); }

kvl_status kvl_hidden(const kvl_ctx *c, int l, int t0, int t1, float *out) {
    if (!c->hidden) return kvl_fail(KVL_ERR_ARG, "hidden states were not kept (create the context with keep_hidden)");
    if (l < 0 || l > c->m->hp.n_layer) return kvl_fail(KVL_ERR_ARG, "hidden-state index %d is outside [0, %d]", l, c->m->hp.n_layer);
    KVL_TRY(check_range(c, t0, t1));
    const int H = c->m->hp.n_embd;
    memcpy(out, c->hidden + ((size_t)l * c->n_ctx + t0) * H, (size_t)(t1 - t0) * H * sizeof(float));
    return KVL_OK;
}
