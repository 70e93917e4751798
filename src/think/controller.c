/* The controllers (METHOD.md section 5), online in the live cache: the prompt's shared prefix is evaluated once,
 * scored, and followed by the chosen mode's start; the two-step controller re-scores the sliding window every
 * `every` sampled tokens and switches by evaluating the template's close or open tokens on top of what is already
 * cached - nothing is evaluated twice. Every token after the prompt is counted, sampled or inserted. */
#include "think/controller.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

kvl_think_params kvl_think_default_params(void) {
    kvl_think_params p;
    memset(&p, 0, sizeof p);
    p.mode = KVL_ADAPT_ONE_STEP;
    p.threshold = 50;
    p.delta = 20;
    p.every = 1;
    p.max_tokens = 1024;
    return p;
}

void kvl_think_result_free(kvl_think_result *r) {
    if (!r) return;
    free(r->tokens);
    free(r->score_at);
    free(r->scores);
    r->tokens = NULL;
    r->score_at = NULL;
    r->scores = NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static kvl_status record_score(kvl_think_result *r, int *cap, int at, float d) {
    if (r->n_scores == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        int *a = realloc(r->score_at, (size_t)nc * sizeof *a);
        if (!a) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        r->score_at = a;
        float *s = realloc(r->scores, (size_t)nc * sizeof *s);
        if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        r->scores = s;
        *cap = nc;
    }
    r->score_at[r->n_scores] = at;
    r->scores[r->n_scores++] = d;
    return KVL_OK;
}

static void push(kvl_think_result *r, const kvl_think_params *p, int32_t id, bool inserted) {
    r->tokens[r->n_tokens++] = id;
    if (inserted) r->n_inserted++;
    else r->n_sampled++;
    if (p->on_token) p->on_token(p->user, id, inserted);
}

kvl_status kvl_think_generate_with(kvl_ctx *c, kvl_sampler *smp, const kvl_think_prompt *pr, const kvl_think_params *p,
                                   const kvl_repr_config *feat, kvl_think_scorer score, void *user,
                                   kvl_think_result *r) {
    if (!r) return kvl_fail(KVL_ERR_ARG, "kvl_think_generate: NULL result");
    memset(r, 0, sizeof *r);
    r->switch_at = -1;
    r->initial_score = NAN;
    r->stop = "length";
    if (!c || !smp || !pr || !p) return kvl_fail(KVL_ERR_ARG, "kvl_think_generate: NULL argument");
    const bool adaptive = p->mode == KVL_ADAPT_ONE_STEP || p->mode == KVL_ADAPT_TWO_STEP;
    if ((unsigned)p->mode > KVL_ADAPT_TWO_STEP) return kvl_fail(KVL_ERR_ARG, "unknown thinking controller %d", (int)p->mode);
    if (adaptive && (!feat || !score)) return kvl_fail(KVL_ERR_ARG, "the adaptive controllers need a probe");
    if (p->max_tokens < 1 || p->every < 1 || !(p->delta >= 0) || !isfinite(p->threshold))
        return kvl_fail(KVL_ERR_ARG, "bad controller parameters (max_tokens >= 1, every >= 1, delta >= 0)");
    if (pr->n_prefix < 1 || pr->n_fast < 1 || pr->n_slow < 1 || pr->n_open < 1 || pr->n_close < 1)
        return kvl_fail(KVL_ERR_ARG, "incomplete thinking prompt (build it with kvl_think_prompt_build)");
    const int n_start_max = pr->n_fast > pr->n_slow ? pr->n_fast : pr->n_slow;
    if (pr->n_prefix + n_start_max >= kvl_ctx_n_ctx(c))
        return kvl_fail(KVL_ERR_RANGE, "the prompt has %d tokens but the context holds %d", pr->n_prefix + n_start_max,
                        kvl_ctx_n_ctx(c));
    const int n_tags_max = pr->n_open > pr->n_close ? pr->n_open : pr->n_close;
    r->tokens = malloc(((size_t)p->max_tokens + n_tags_max) * sizeof *r->tokens);
    int dim = 0;
    if (adaptive) KVL_TRY(kvl_repr_dim(kvl_ctx_model(c), feat, &dim));
    float *x = malloc((size_t)(dim > 0 ? dim : 1) * sizeof *x);
    kvl_feat_window *win = NULL;
    kvl_status s = r->tokens && x ? KVL_OK : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    int cap = 0;

    const double t0 = now();
    if (!s) s = kvl_ctx_truncate(c, 0);
    if (!s) s = kvl_eval(c, pr->prefix, pr->n_prefix, KVL_LOGITS_NONE);
    bool slow = p->mode == KVL_ADAPT_SLOW;
    if (!s && adaptive) {
        if (p->mode == KVL_ADAPT_TWO_STEP) {
            s = kvl_feat_window_new(kvl_seq_view(c, 0), feat, 0, &win);
            if (!s) s = kvl_feat_window_advance(win, kvl_seq_view(c, 0), pr->n_prefix);
            if (!s) s = kvl_feat_window_get(win, x);
        } else {
            s = kvl_repr_compute(kvl_seq_view(c, 0), feat, 0, pr->n_prefix, x);
        }
        if (!s) {
            r->initial_score = score(user, x, dim, 0);
            slow = !(r->initial_score < p->threshold);
            if (p->mode == KVL_ADAPT_TWO_STEP) s = record_score(r, &cap, 0, r->initial_score);
        }
    }
    r->initial_slow = slow;
    const int32_t *start = slow ? pr->slow : pr->fast;
    const int n_start = slow ? pr->n_slow : pr->n_fast;
    if (!s) s = kvl_eval(c, start, n_start, KVL_LOGITS_LAST);
    r->n_prompt = pr->n_prefix + n_start;
    const double t1 = now();
    r->t_prompt = t1 - t0;

    bool checking = p->mode == KVL_ADAPT_TWO_STEP;
    int since = 0;
    const int n_vocab = kvl_model_hparams(kvl_ctx_model(c))->n_vocab;
    while (!s && r->n_tokens < p->max_tokens) {
        int32_t t = kvl_sample(smp, kvl_logits(c, 0), n_vocab);
        push(r, p, t, false);
        if (!p->ignore_eos && kvl_model_is_eog(kvl_ctx_model(c), t)) {
            r->stop = "eog";
            break;
        }
        if (r->n_tokens >= p->max_tokens) break;
        /* the model leaving or entering thinking by itself ends the controller's say */
        if (slow && t == pr->close[0]) r->model_closed = true, checking = false;
        if (!slow && t == pr->open[0]) checking = false;
        if (kvl_ctx_n_pos(c) >= kvl_ctx_n_ctx(c)) {
            r->stop = "context";
            break;
        }
        if ((s = kvl_eval(c, &t, 1, KVL_LOGITS_LAST))) break;
        if (!checking || ++since < p->every) continue;
        since = 0;
        const double tp = now();
        s = kvl_feat_window_advance(win, kvl_seq_view(c, 0), kvl_ctx_n_pos(c));
        if (!s) s = kvl_feat_window_get(win, x);
        float d = s ? 0 : score(user, x, dim, r->n_tokens);
        if (!s) s = record_score(r, &cap, r->n_tokens, d);
        bool flip = slow ? d < p->threshold - p->delta : d > p->threshold + p->delta;
        if (!s && flip) {
            const int32_t *tags = slow ? pr->close : pr->open;
            const int n_tags = slow ? pr->n_close : pr->n_open;
            checking = false; /* at most one switch */
            if (kvl_ctx_n_pos(c) + n_tags >= kvl_ctx_n_ctx(c)) {
                r->stop = "context";
                r->t_probe += now() - tp;
                break;
            }
            r->switch_at = r->n_tokens;
            r->switch_dir = slow ? -1 : +1;
            for (int i = 0; i < n_tags; i++) push(r, p, tags[i], true);
            s = kvl_eval(c, tags, n_tags, KVL_LOGITS_LAST);
            slow = !slow;
        }
        r->t_probe += now() - tp;
    }
    r->final_slow = slow;
    r->t_gen = now() - t1;
    kvl_feat_window_free(win);
    free(x);
    return s;
}

static float probe_scorer(void *user, const float *x, int dim, int n_generated) {
    (void)dim, (void)n_generated;
    return kvl_probe_score(user, x);
}

kvl_status kvl_think_generate(kvl_ctx *c, kvl_sampler *smp, const kvl_think_prompt *pr, const kvl_think_params *p,
                              kvl_think_result *out) {
    if (out) {
        memset(out, 0, sizeof *out);
        out->switch_at = -1;
        out->initial_score = NAN;
        out->stop = "length";
    }
    if (!c || !p || !out) return kvl_fail(KVL_ERR_ARG, "kvl_think_generate: NULL argument");
    if (p->mode == KVL_ADAPT_ONE_STEP || p->mode == KVL_ADAPT_TWO_STEP) {
        if (!p->probe) return kvl_fail(KVL_ERR_ARG, "the adaptive controllers need a probe");
        KVL_TRY(kvl_probe_check_model(p->probe, kvl_ctx_model(c)));
        return kvl_think_generate_with(c, smp, pr, p, kvl_probe_features(p->probe), probe_scorer, (void *)p->probe, out);
    }
    return kvl_think_generate_with(c, smp, pr, p, NULL, NULL, NULL, out);
}
