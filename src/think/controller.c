/* The controllers (docs/METHOD.md section 5), online in the live cache: the prompt's shared prefix is evaluated once,
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

/* The controller as the engine's hook: after the prefix it scores and picks the mode's start (inserted as prompt);
 * after every `every` sampled tokens (two-step) it re-scores the window ending at the newest position and switches
 * at most once by inserting the close or open tags. It wraps the hooks the caller had set in the request. */
struct kvl_think_ctl {
    const kvl_think_prompt *pr;
    kvl_think_params p;
    const kvl_repr_config *feat;
    kvl_think_scorer score;
    void *score_user;
    int dim;
    float *x;
    kvl_feat_window *win;
    kvl_think_result r;      /* decisions and scores; tokens come from the engine's result */
    int score_cap;
    bool started, slow, checking, after_insert;
    int since;
    kvl_gen_params outer;    /* the caller's hooks, called from ours */
};

static void ctl_token(void *user, int32_t id, bool inserted) {
    kvl_think_ctl *t = user;
    if (t->p.on_token) t->p.on_token(t->p.user, id, inserted);
    if (t->outer.on_token) t->outer.on_token(t->outer.user, id, inserted);
}

static void ctl_logits(void *user, const float *logits, int n_vocab) {
    kvl_think_ctl *t = user;
    if (t->outer.on_logits) t->outer.on_logits(t->outer.user, logits, n_vocab);
}

static void ctl_done(void *user, const kvl_view *v, const kvl_gen_result *g) {
    kvl_think_ctl *t = user;
    t->r.final_slow = t->slow;
    if (t->outer.on_done) t->outer.on_done(t->outer.user, v, g);
}

static kvl_status ctl_step(void *user, const kvl_view *v, kvl_gen_event *ev) {
    kvl_think_ctl *t = user;
    const kvl_think_prompt *pr = t->pr;
    const bool adaptive = t->p.mode == KVL_ADAPT_ONE_STEP || t->p.mode == KVL_ADAPT_TWO_STEP;
    kvl_status s = KVL_OK;
    if (!t->started) { /* the prefix is in the cache: decide the mode */
        t->started = true;
        t->slow = t->p.mode == KVL_ADAPT_SLOW;
        if (adaptive) {
            if (t->p.mode == KVL_ADAPT_TWO_STEP) {
                s = kvl_feat_window_new(v, t->feat, 0, &t->win);
                if (!s) s = kvl_feat_window_advance(t->win, v, pr->n_prefix);
                if (!s) s = kvl_feat_window_get(t->win, t->x);
            } else {
                s = kvl_repr_compute(v, t->feat, 0, pr->n_prefix, t->x);
            }
            if (s) return s;
            t->r.initial_score = t->score(t->score_user, t->x, t->dim, 0);
            t->slow = !(t->r.initial_score < t->p.threshold);
            if (t->p.mode == KVL_ADAPT_TWO_STEP) KVL_TRY(record_score(&t->r, &t->score_cap, 0, t->r.initial_score));
        }
        t->r.initial_slow = t->slow;
        t->checking = t->p.mode == KVL_ADAPT_TWO_STEP;
        ev->insert = t->slow ? pr->slow : pr->fast;
        ev->n_insert = t->slow ? pr->n_slow : pr->n_fast;
        ev->insert_is_prompt = true;
        return KVL_OK;
    }
    if (ev->after_prompt) return KVL_OK; /* the mode's start is in: sampling begins */
    if (t->after_insert) { /* our own switch tags were evaluated: nothing to check any more */
        t->after_insert = false;
        return KVL_OK;
    }
    /* the model leaving or entering thinking by itself ends the controller's say */
    if (t->slow && ev->last == pr->close[0]) t->r.model_closed = true, t->checking = false;
    if (!t->slow && ev->last == pr->open[0]) t->checking = false;
    if (!t->checking || ++t->since < t->p.every) return KVL_OK;
    t->since = 0;
    const double tp = now();
    s = kvl_feat_window_advance(t->win, v, kvl_view_n_pos(v));
    if (!s) s = kvl_feat_window_get(t->win, t->x);
    const float d = s ? 0 : t->score(t->score_user, t->x, t->dim, ev->n_generated);
    if (!s) s = record_score(&t->r, &t->score_cap, ev->n_generated, d);
    const bool flip = t->slow ? d < t->p.threshold - t->p.delta : d > t->p.threshold + t->p.delta;
    if (!s && flip) {
        t->checking = false; /* at most one switch */
        t->r.switch_at = ev->n_generated;
        t->r.switch_dir = t->slow ? -1 : +1;
        ev->insert = t->slow ? pr->close : pr->open;
        ev->n_insert = t->slow ? pr->n_close : pr->n_open;
        t->slow = !t->slow;
        t->after_insert = true;
    }
    t->r.t_probe += now() - tp;
    return s;
}

kvl_status kvl_think_ctl_new_with(const kvl_model *m, const kvl_think_prompt *pr, const kvl_think_params *p,
                                  const kvl_repr_config *feat, kvl_think_scorer score, void *user,
                                  kvl_think_ctl **out) {
    if (!m || !pr || !p || !out) return kvl_fail(KVL_ERR_ARG, "kvl_think_ctl_new: NULL argument");
    *out = NULL;
    const bool adaptive = p->mode == KVL_ADAPT_ONE_STEP || p->mode == KVL_ADAPT_TWO_STEP;
    if ((unsigned)p->mode > KVL_ADAPT_TWO_STEP) return kvl_fail(KVL_ERR_ARG, "unknown thinking controller %d", (int)p->mode);
    if (adaptive && (!feat || !score)) return kvl_fail(KVL_ERR_ARG, "the adaptive controllers need a probe");
    if (p->max_tokens < 1 || p->every < 1 || !(p->delta >= 0) || !isfinite(p->threshold))
        return kvl_fail(KVL_ERR_ARG, "bad controller parameters (max_tokens >= 1, every >= 1, delta >= 0)");
    if (pr->n_prefix < 1 || pr->n_fast < 1 || pr->n_slow < 1 || pr->n_open < 1 || pr->n_close < 1)
        return kvl_fail(KVL_ERR_ARG, "incomplete thinking prompt (build it with kvl_think_prompt_build)");
    int dim = 0;
    if (adaptive) KVL_TRY(kvl_repr_dim(m, feat, &dim));
    kvl_think_ctl *t = calloc(1, sizeof *t);
    if (!t || !(t->x = malloc((size_t)(dim > 0 ? dim : 1) * sizeof *t->x))) {
        free(t);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    t->pr = pr;
    t->p = *p;
    t->feat = feat;
    t->score = score;
    t->score_user = user;
    t->dim = dim;
    t->r.switch_at = -1;
    t->r.initial_score = NAN;
    *out = t;
    return KVL_OK;
}

static float probe_scorer(void *user, const float *x, int dim, int n_generated) {
    (void)dim, (void)n_generated;
    return kvl_probe_score(user, x);
}

kvl_status kvl_think_ctl_new(const kvl_model *m, const kvl_think_prompt *pr, const kvl_think_params *p,
                             kvl_think_ctl **out) {
    if (out) *out = NULL;
    if (!m || !p || !out) return kvl_fail(KVL_ERR_ARG, "kvl_think_ctl_new: NULL argument");
    if (p->mode == KVL_ADAPT_ONE_STEP || p->mode == KVL_ADAPT_TWO_STEP) {
        if (!p->probe) return kvl_fail(KVL_ERR_ARG, "the adaptive controllers need a probe");
        KVL_TRY(kvl_probe_check_model(p->probe, m));
        return kvl_think_ctl_new_with(m, pr, p, kvl_probe_features(p->probe), probe_scorer, (void *)p->probe, out);
    }
    return kvl_think_ctl_new_with(m, pr, p, NULL, NULL, NULL, out);
}

void kvl_think_ctl_attach(kvl_think_ctl *t, kvl_gen_params *gp) {
    t->outer = *gp;
    gp->prompt = t->pr->prefix;
    gp->n_prompt = t->pr->n_prefix;
    gp->max_tokens = t->p.max_tokens;
    gp->ignore_eos = t->p.ignore_eos;
    gp->on_token = ctl_token;
    gp->on_logits = ctl_logits;
    gp->on_step = ctl_step;
    gp->on_done = ctl_done;
    gp->user = t;
}

kvl_status kvl_think_ctl_finish(kvl_think_ctl *t, kvl_gen_result *g, kvl_think_result *out) {
    *out = t->r;
    memset(&t->r, 0, sizeof t->r); /* the score arrays move to out */
    out->tokens = g->tokens;
    g->tokens = NULL;
    out->n_tokens = g->n_tokens;
    out->n_sampled = g->n_sampled;
    out->n_inserted = g->n_inserted;
    out->n_prompt = g->n_prompt;
    out->final_slow = t->slow;
    out->stop = !strcmp(g->stop, "eog") || !strcmp(g->stop, "context") ? g->stop : "length";
    if (out->switch_at >= out->n_tokens) out->switch_at = -1, out->switch_dir = 0; /* its tags did not fit */
    out->t_prompt = g->t_prompt;
    out->t_gen = g->t_gen;
    return g->status ? kvl_fail(g->status, "%s", g->error) : KVL_OK;
}

bool kvl_think_ctl_slow(const kvl_think_ctl *t) { return t && t->slow; }

void kvl_think_ctl_free(kvl_think_ctl *t) {
    if (!t) return;
    kvl_feat_window_free(t->win);
    kvl_think_result_free(&t->r);
    free(t->x);
    free(t);
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
    kvl_think_ctl *t;
    KVL_TRY(kvl_think_ctl_new_with(kvl_ctx_model(c), pr, p, feat, score, user, &t));
    const int n_start_max = pr->n_fast > pr->n_slow ? pr->n_fast : pr->n_slow;
    if (pr->n_prefix + n_start_max >= kvl_ctx_n_ctx(c)) {
        kvl_think_ctl_free(t);
        return kvl_fail(KVL_ERR_RANGE, "the prompt has %d tokens but the context holds %d", pr->n_prefix + n_start_max,
                        kvl_ctx_n_ctx(c));
    }
    kvl_gen_params gp = kvl_gen_default_params();
    gp.sampler = smp;
    gp.cancel = p->cancel;
    kvl_think_ctl_attach(t, &gp);
    kvl_gen_result g;
    kvl_status s = kvl_generate(c, &gp, &g);
    const bool cancelled = g.stop && !strcmp(g.stop, "cancel");
    kvl_status s2 = kvl_think_ctl_finish(t, &g, r);
    if (cancelled) r->stop = "cancel";
    kvl_gen_result_free(&g);
    kvl_think_ctl_free(t);
    return s ? s : s2;
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
