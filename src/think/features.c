/* Classifier features: the two training views of a question, and the sliding window the two-step controller
 * re-scores at every check. The window keeps, per selected layer and KV head, the running sum of K and of V over
 * its positions; moving it by one position adds the newest row and subtracts the row that leaves, so a check costs
 * O(layers * heads * head_dim) instead of O(window * layers * heads * head_dim). Sums are in double: a float row
 * added and later subtracted cancels to rounding far below the features' own precision. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "think/features.h"
#include "util/error.h"

kvl_status kvl_think_features(kvl_ctx *c, const kvl_tokenizer *t, const kvl_repr_config *cfg,
                              const kvl_think_prompt *pr, const char *question, float *tmpl, float *raw) {
    if (!c || !t || !cfg || !pr || !question || !tmpl || !raw)
        return kvl_fail(KVL_ERR_ARG, "kvl_think_features: NULL argument");
    KVL_TRY(kvl_embed_ids(c, cfg, 1, pr->prefix, pr->n_prefix, KVL_TRUNCATE_LEFT, NULL, 0, &tmpl));
    int32_t *ids = NULL;
    int n = 0;
    KVL_TRY(kvl_tokenize(t, question, strlen(question), kvl_tokenizer_add_bos(t), &ids, &n));
    kvl_status s = n > 0 ? kvl_embed_ids(c, cfg, 1, ids, n, KVL_TRUNCATE_LEFT, NULL, 0, &raw)
                         : kvl_fail(KVL_ERR_ARG, "the question is empty");
    free(ids);
    return s;
}

struct kvl_feat_window {
    kvl_repr_config cfg;
    int sel[KVL_REPR_MAX_LAYERS], n_sel;
    int n_kv, hd, W, dim;
    int seq;            /* the sequence it follows */
    int t0, t_end;      /* the range starts at t0; the window covers [max(t0, t_end - W), t_end) */
    int use_k, use_v;
    double *sum;        /* [n_sel][n_kv][2][hd]: K then V */
    double *vec;        /* dim, the assembled vector */
    float *row;         /* hd, for caches that are not host f32 */
};

kvl_status kvl_feat_window_new(const kvl_view *v, const kvl_repr_config *cfg, int t0, kvl_feat_window **out) {
    if (!v || !cfg || !out) return kvl_fail(KVL_ERR_ARG, "kvl_feat_window_new: NULL argument (or a bad sequence id)");
    *out = NULL;
    int dim;
    const kvl_model *m = kvl_view_model(v);
    const kvl_hparams *hp = kvl_model_hparams(m);
    KVL_TRY(kvl_repr_dim(m, cfg, &dim));
    if (cfg->source != KVL_SOURCE_KV) return kvl_fail(KVL_ERR_UNSUPPORTED, "a sliding feature window reads the KV cache (source kv)");
    if (cfg->pos_agg != KVL_POS_SUM && cfg->pos_agg != KVL_POS_MEAN)
        return kvl_fail(KVL_ERR_UNSUPPORTED, "a sliding feature window sums positions (pos_agg sum or mean)");
    if (t0 < 0 || t0 >= kvl_view_n_ctx(v)) return kvl_fail(KVL_ERR_ARG, "window start %d is outside the context", t0);
    kvl_feat_window *w = calloc(1, sizeof *w);
    if (!w) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    w->cfg = *cfg;
    kvl_layer_sel_resolve(&cfg->layers, hp->n_layer, w->sel, &w->n_sel); /* checked by kvl_repr_dim */
    w->seq = kvl_view_seq(v);
    w->n_kv = hp->n_head_kv;
    w->hd = hp->head_dim;
    w->W = cfg->window > 0 ? cfg->window : INT_MAX / 2; /* window 0: every position from t0 on */
    w->dim = dim;
    w->t0 = w->t_end = t0;
    w->use_k = cfg->kv_part != KVL_KV_V;
    w->use_v = cfg->kv_part != KVL_KV_K;
    w->sum = calloc((size_t)w->n_sel * w->n_kv * 2 * w->hd, sizeof *w->sum);
    w->vec = malloc((size_t)dim * sizeof *w->vec);
    w->row = malloc((size_t)w->hd * sizeof *w->row);
    if (!w->sum || !w->vec || !w->row) {
        kvl_feat_window_free(w);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    *out = w;
    return KVL_OK;
}

void kvl_feat_window_free(kvl_feat_window *w) {
    if (!w) return;
    free(w->sum);
    free(w->vec);
    free(w->row);
    free(w);
}

void kvl_feat_window_reset(kvl_feat_window *w) {
    if (!w) return;
    memset(w->sum, 0, (size_t)w->n_sel * w->n_kv * 2 * w->hd * sizeof *w->sum);
    w->t_end = w->t0;
}

int kvl_feat_window_end(const kvl_feat_window *w) { return w ? w->t_end : 0; }

/* sum += sign * the K and V rows of position t, in every selected layer and head. */
static kvl_status add_position(kvl_feat_window *w, const kvl_view *v, int t, double sign) {
    const int hd = w->hd;
    for (int j = 0; j < w->n_sel; j++)
        for (int h = 0; h < w->n_kv; h++)
            for (int which = 0; which < 2; which++) {
                if (!(which ? w->use_v : w->use_k)) continue;
                const float *r = kvl_view_kv(v, which, w->sel[j], h, t, t + 1, w->row);
                if (!r) return KVL_ERR_ARG;
                double *s = w->sum + (((size_t)j * w->n_kv + h) * 2 + which) * hd;
                for (int i = 0; i < hd; i++) s[i] += sign * r[i];
            }
    return KVL_OK;
}

kvl_status kvl_feat_window_advance(kvl_feat_window *w, const kvl_view *v, int t_end) {
    if (!w || !v) return kvl_fail(KVL_ERR_ARG, "kvl_feat_window_advance: NULL argument");
    const kvl_hparams *hp = kvl_model_hparams(kvl_view_model(v));
    if (hp->n_head_kv != w->n_kv || hp->head_dim != w->hd || hp->n_layer <= w->sel[w->n_sel - 1])
        return kvl_fail(KVL_ERR_ARG, "the feature window was made for another model");
    if (kvl_view_seq(v) != w->seq)
        return kvl_fail(KVL_ERR_ARG, "the feature window follows sequence %d, not %d", w->seq, kvl_view_seq(v));
    const int n_pos = kvl_view_n_pos(v);
    if (t_end <= w->t0 || t_end > n_pos)
        return kvl_fail(KVL_ERR_ARG, "window end %d is outside the filled positions (%d, %d]", t_end, w->t0, n_pos);
    if (t_end < w->t_end || t_end - w->t_end >= w->W) {
        /* backwards, or a jump past the whole window: sum the new window from scratch */
        kvl_feat_window_reset(w);
        for (int t = t_end - w->W > w->t0 ? t_end - w->W : w->t0; t < t_end; t++) KVL_TRY(add_position(w, v, t, 1.0));
    } else {
        /* the sum covers [max(t0, t_end - W), t_end): each new position enters, the one W back leaves */
        for (int t = w->t_end; t < t_end; t++) {
            KVL_TRY(add_position(w, v, t, 1.0));
            if (t - w->W >= w->t0) KVL_TRY(add_position(w, v, t - w->W, -1.0));
        }
    }
    w->t_end = t_end;
    return KVL_OK;
}

kvl_status kvl_feat_window_get(const kvl_feat_window *w, float *out) {
    if (!w || !out) return kvl_fail(KVL_ERR_ARG, "kvl_feat_window_get: NULL argument");
    int count = w->t_end - w->t0 < w->W ? w->t_end - w->t0 : w->W;
    if (count <= 0) return kvl_fail(KVL_ERR_ARG, "the feature window is empty");
    const kvl_repr_config *cfg = &w->cfg;
    const int hd = w->hd, P = hd * (cfg->kv_part == KVL_KV_CAT ? 2 : 1);
    const bool flat = cfg->head_agg == KVL_HEADS_FLATTEN;
    const int dl = P * (flat ? w->n_kv : 1);
    const double pos_scale = cfg->pos_agg == KVL_POS_MEAN ? 1.0 / count : 1.0, head_w = flat ? 1.0 : 1.0 / w->n_kv;
    double *v = w->vec;
    memset(v, 0, (size_t)w->dim * sizeof *v);
    /* as kvl_repr_compute: positions, then heads, then layers, then normalisation */
    for (int j = cfg->layer_agg == KVL_LAYERS_LAST ? w->n_sel - 1 : 0; j < w->n_sel; j++) {
        double lw = cfg->layer_agg == KVL_LAYERS_MEAN ? 1.0 / w->n_sel : 1.0;
        double *dst = cfg->layer_agg == KVL_LAYERS_FLATTEN ? v + (size_t)j * dl : v;
        for (int h = 0; h < w->n_kv; h++) {
            double *d = dst + (flat ? (size_t)h * P : 0);
            const double *s = w->sum + ((size_t)j * w->n_kv + h) * 2 * hd;
            if (w->use_k)
                for (int i = 0; i < hd; i++) d[i] += lw * head_w * pos_scale * s[i];
            if (w->use_v) {
                double *dv = d + (cfg->kv_part == KVL_KV_CAT ? hd : 0);
                for (int i = 0; i < hd; i++) dv[i] += lw * head_w * pos_scale * s[hd + i];
            }
        }
    }
    double f = 1.0;
    if (cfg->normalize) {
        double n2 = 0;
        for (int i = 0; i < w->dim; i++) n2 += v[i] * v[i];
        if (n2 > 0) f = 1.0 / sqrt(n2);
    }
    for (int i = 0; i < w->dim; i++) out[i] = (float)(v[i] * f);
    return KVL_OK;
}

kvl_status kvl_think_trace_windows(kvl_ctx *c, const kvl_repr_config *cfg, const kvl_think_prompt *pr, bool slow,
                                   const int32_t *ids, int n_ids, const int *ends, int n_ends, bool stepwise,
                                   float *out) {
    if (!c || !cfg || !pr || (!ids && n_ids > 0) || !ends || n_ends < 1 || !out)
        return kvl_fail(KVL_ERR_ARG, "kvl_think_trace_windows: bad argument");
    for (int j = 0; j < n_ends; j++)
        if (ends[j] < 1 || ends[j] > n_ids || (j && ends[j] <= ends[j - 1]))
            return kvl_fail(KVL_ERR_ARG, "window ends must increase within 1..%d (end %d is %d)", n_ids, j, ends[j]);
    const int32_t *start = slow ? pr->slow : pr->fast;
    const int n_start = slow ? pr->n_slow : pr->n_fast, n_prompt = pr->n_prefix + n_start;
    if (pr->n_prefix < 1 || n_start < 1) return kvl_fail(KVL_ERR_ARG, "incomplete thinking prompt");
    const int n = n_prompt + ends[n_ends - 1];
    if (n > kvl_ctx_n_ctx(c))
        return kvl_fail(KVL_ERR_RANGE, "a trace of %d positions does not fit the context of %d", n, kvl_ctx_n_ctx(c));
    int dim;
    KVL_TRY(kvl_repr_dim(kvl_ctx_model(c), cfg, &dim));
    int32_t *seq = malloc((size_t)n * sizeof *seq);
    if (!seq) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    memcpy(seq, pr->prefix, (size_t)pr->n_prefix * sizeof *seq);
    memcpy(seq + pr->n_prefix, start, (size_t)n_start * sizeof *seq);
    memcpy(seq + n_prompt, ids, (size_t)ends[n_ends - 1] * sizeof *seq);
    kvl_feat_window *w = NULL;
    kvl_status s = kvl_seq_clear(c, -1);
    /* stepwise: the prefix, the start and then each token on its own, as the live cache was built (the batched
     * products of a longer prefill round differently in the last bits) */
    if (!s) s = kvl_eval(c, seq, stepwise ? pr->n_prefix : n, KVL_LOGITS_NONE);
    if (!s && stepwise) s = kvl_eval(c, seq + pr->n_prefix, n_start, KVL_LOGITS_NONE);
    for (int i = n_prompt; stepwise && i < n && !s; i++) s = kvl_eval(c, seq + i, 1, KVL_LOGITS_NONE);
    free(seq);
    const kvl_view *v = s ? NULL : kvl_seq_view(c, 0);
    if (!s) s = kvl_feat_window_new(v, cfg, 0, &w);
    /* the controller: the window over the prefix (its first score), then after each sampled token the window ending
     * at the newest position (the first of these also takes in the mode's start) */
    if (!s) s = kvl_feat_window_advance(w, v, pr->n_prefix);
    for (int k = 1, j = 0; !s && j < n_ends; k++) {
        s = kvl_feat_window_advance(w, v, n_prompt + k);
        if (!s && k == ends[j]) s = kvl_feat_window_get(w, out + (size_t)j++ * dim);
    }
    kvl_feat_window_free(w);
    return s;
}
