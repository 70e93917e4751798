/* Sessions: "answer these messages" on top of the scheduler. Each answer is a job: its prompt (rendered and
 * tokenized, or the controller's prefix and starts), its own sampler seed, the controller hook when one runs, and
 * a done hook that reads the finished answer's cache (scores, the caller's on_cache) before the slot is reused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

struct kvl_session {
    kvl_model *m;
    const kvl_tokenizer *tok;
    kvl_ctx *c;
    kvl_sched *sched;
    kvl_session_params p;
    struct job *live;        /* jobs whose answers are not delivered yet (freed with the session) */
};

typedef struct job {
    struct job *prev, *next;
    kvl_session *s;
    kvl_answer a;
    kvl_answer_opts o;
    int32_t *ids;            /* the rendered prompt (no controller) */
    kvl_think_prompt pr;     /* with a controller */
    bool has_pr;
    kvl_think_ctl *ctl;
    kvl_gen_result g;
    bool mode_told, mode_slow; /* on_mode: told yet, and what */
} job;

static void job_free(job *j);

static void job_link(job *j) {
    j->next = j->s->live;
    if (j->next) j->next->prev = j;
    j->s->live = j;
}

static void job_unlink(job *j) {
    if (j->prev) j->prev->next = j->next;
    else if (j->s->live == j) j->s->live = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

kvl_session_params kvl_session_default_params(void) {
    kvl_session_params p;
    memset(&p, 0, sizeof p);
    p.ctx = kvl_ctx_default_params();
    p.chat = kvl_chat_default_params();
    p.sampling = kvl_sampler_default_params();
    p.max_tokens = 1024;
    p.think = kvl_think_default_params();
    return p;
}

kvl_status kvl_session_new(kvl_model *m, const kvl_session_params *p, kvl_session **out) {
    if (!m || !out) return kvl_fail(KVL_ERR_ARG, "kvl_session_new: NULL argument");
    *out = NULL;
    kvl_session_params sp = p ? *p : kvl_session_default_params();
    if (sp.max_tokens < 1) return kvl_fail(KVL_ERR_ARG, "max_tokens must be at least 1 (%d)", sp.max_tokens);
    const kvl_tokenizer *tok;
    KVL_TRY(kvl_model_tokenizer(m, &tok));
    if (sp.controller) {
        const char *open, *close;
        if (kvl_chat_think_tags(tok, sp.chat.template_override, &open, &close))
            return kvl_fail_ctx(KVL_ERR_UNSUPPORTED, "the thinking controller needs a hybrid-thinking template");
        if ((sp.think.mode == KVL_ADAPT_ONE_STEP || sp.think.mode == KVL_ADAPT_TWO_STEP) && !sp.think.probe)
            return kvl_fail(KVL_ERR_ARG, "the adaptive controllers need a probe");
        if (sp.think.probe) KVL_TRY(kvl_probe_check_model(sp.think.probe, m));
    }
    kvl_session *s = calloc(1, sizeof *s);
    if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    s->m = m;
    s->tok = tok;
    s->p = sp;
    kvl_status st = kvl_ctx_new(m, &sp.ctx, &s->c);
    if (!st) st = kvl_sched_new(s->c, 0, &s->sched);
    if (st) {
        kvl_session_free(s);
        return st;
    }
    *out = s;
    return KVL_OK;
}

void kvl_session_free(kvl_session *s) {
    if (!s) return;
    kvl_sched_free(s->sched);
    while (s->live) job_free(s->live); /* answers never finished */
    kvl_ctx_free(s->c);
    free(s);
}

kvl_ctx *kvl_session_ctx(kvl_session *s) { return s ? s->c : NULL; }
const kvl_tokenizer *kvl_session_tokenizer(const kvl_session *s) { return s ? s->tok : NULL; }

void kvl_answer_free(kvl_answer *a) {
    if (!a) return;
    free(a->prompt);
    free(a->tokens);
    free(a->text);
    kvl_think_result_free(&a->think);
    memset(a, 0, sizeof *a);
}

static void job_free(job *j) {
    job_unlink(j);
    kvl_answer_free(&j->a);
    free(j->ids);
    if (j->has_pr) kvl_think_prompt_free(&j->pr);
    kvl_think_ctl_free(j->ctl);
    kvl_gen_result_free(&j->g);
    free(j);
}

/* Hand the answer to the caller and free the job. */
static void deliver(job *j) {
    if (j->o.done) j->o.done(j->o.user, &j->a);
    job_free(j);
}

static void job_token(void *user, int32_t id, bool inserted) {
    job *j = user;
    if (j->ctl && j->o.on_mode) { /* the mode is decided before the first token; a switch flips it first */
        const bool slow = kvl_think_ctl_slow(j->ctl);
        if (!j->mode_told || slow != j->mode_slow) j->o.on_mode(j->o.user, slow);
        j->mode_told = true;
        j->mode_slow = slow;
    }
    if (j->o.on_token) j->o.on_token(j->o.user, id, inserted);
}

static void job_logits(void *user, const float *logits, int n_vocab) {
    job *j = user;
    kvl_logit_stats_add(&j->a.stats, logits, n_vocab);
    if (j->o.on_logits) j->o.on_logits(j->o.user, logits, n_vocab);
}

/* prefill_only: the prompt is in the cache; end before anything is sampled. */
static kvl_status job_prefill(void *user, const kvl_view *v, kvl_gen_event *ev) {
    (void)user, (void)v;
    if (ev->after_prompt) ev->stop = true;
    return KVL_OK;
}

static void fail_answer(kvl_answer *a, kvl_status st) {
    a->status = st;
    a->stop = "error";
    snprintf(a->error, sizeof a->error, "%s", kvl_last_error());
}

/* The request has ended; its sequence still holds the prompt and the answer. */
static void job_done(void *user, const kvl_view *v, const kvl_gen_result *g) {
    job *j = user;
    kvl_answer *a = &j->a;
    kvl_status st = KVL_OK;
    a->stop = j->o.prefill_only && !strcmp(g->stop, "hook") ? "prefill" : g->stop;
    a->status = g->status;
    memcpy(a->error, g->error, sizeof a->error);
    a->t_prompt = g->t_prompt;
    a->t_gen = g->t_gen;
    a->n_prompt_cached = g->n_prompt_cached;
    if (j->ctl) {
        st = kvl_think_ctl_finish(j->ctl, &j->g, &a->think); /* j->g is the result g points to */
        a->has_think = true;
    }
    const int32_t *gen = j->ctl ? a->think.tokens : g->tokens;
    a->n_tokens = g->n_tokens;
    a->tokens = malloc(((size_t)a->n_tokens + 1) * sizeof *a->tokens);
    const int32_t *pp = j->has_pr ? j->pr.prefix : j->ids;
    a->n_prompt = g->n_prompt;
    a->prompt = malloc(((size_t)a->n_prompt + 1) * sizeof *a->prompt);
    if (!a->tokens || !a->prompt) st = kvl_fail(KVL_ERR_NOMEM, "out of memory");
    if (!st) {
        if (a->n_tokens) memcpy(a->tokens, gen, (size_t)a->n_tokens * sizeof *gen);
        if (j->has_pr) {
            const int np = j->pr.n_prefix, slow = a->think.initial_slow;
            memcpy(a->prompt, pp, (size_t)np * sizeof *pp);
            const int32_t *start = slow ? j->pr.slow : j->pr.fast;
            const int ns = slow ? j->pr.n_slow : j->pr.n_fast;
            if (np + ns == a->n_prompt) memcpy(a->prompt + np, start, (size_t)ns * sizeof *start);
            else a->n_prompt = np; /* the start was never evaluated (an error right after the prefix) */
        } else {
            memcpy(a->prompt, pp, (size_t)a->n_prompt * sizeof *pp);
        }
        const int n_text = a->n_tokens > 0 && !strcmp(a->stop, "eog") ? a->n_tokens - 1 : a->n_tokens;
        st = kvl_detokenize(j->s->tok, a->tokens, n_text, &a->text, &a->text_len);
    }
    if (!st && !a->status && j->s->p.scores && a->n_tokens > 0 && v)
        if (!(st = kvl_answer_score(v, &j->s->p.score_layers, a->n_prompt, a->n_tokens, &a->stats, &a->scores)))
            a->has_scores = true;
    if (!st && !a->status && j->o.on_cache && v) st = j->o.on_cache(j->o.user, v, a);
    if (st && !a->status) fail_answer(a, st);
    /* The engine and the controller touch neither the request's result nor the hook's user after this hook
     * returns, so the job (and with it the controller and the result) can go now. */
    deliver(j);
}

static kvl_status build_prompt(job *j, const kvl_chat_msg *msgs, int n, int *n_need) {
    kvl_session *s = j->s;
    if (j->ctl || s->p.controller) {
        KVL_TRY(kvl_think_prompt_build(s->tok, msgs, n, &s->p.chat, &j->pr));
        j->has_pr = true;
        *n_need = j->pr.n_prefix + (j->pr.n_fast > j->pr.n_slow ? j->pr.n_fast : j->pr.n_slow);
        return KVL_OK;
    }
    char *text;
    size_t len;
    KVL_TRY(kvl_chat_render(s->tok, msgs, n, &s->p.chat, &text, &len));
    int n_ids = 0;
    kvl_status st = kvl_tokenize(s->tok, text, len, false, &j->ids, &n_ids);
    free(text);
    *n_need = n_ids;
    return st;
}

static job *job_new(kvl_session *s, const kvl_answer_opts *o) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->s = s;
    j->o = *o;
    j->a.index = o->index;
    j->a.stop = "";
    return j;
}

/* The prompt is built (n_need positions before the first sample): queue the job. */
static kvl_status job_submit(job *j, int n_need) {
    kvl_session *s = j->s;
    const kvl_answer_opts *o = &j->o;
    kvl_status st = KVL_OK;
    const int n_ctx = kvl_ctx_n_ctx(s->c);
    if (n_need >= n_ctx) { /* answered at once: nothing generated */
        j->a.stop = "prompt too long";
        j->a.n_prompt = n_need;
        deliver(j);
        return KVL_OK;
    }
    if (o->max_tokens < 0 || (o->max_tokens > 0 && !o->prefill_only && (long)n_need + o->max_tokens > n_ctx)) {
        st = o->max_tokens < 0 ? kvl_fail(KVL_ERR_ARG, "max_tokens must be at least 1 (%d)", o->max_tokens)
                               : kvl_fail(KVL_ERR_RANGE, "the prompt (%d tokens) and max_tokens (%d) need %ld positions "
                                          "but the context holds %d", n_need, o->max_tokens,
                                          (long)n_need + o->max_tokens, n_ctx);
        job_free(j);
        return st;
    }
    const int max_tokens = o->max_tokens > 0 ? o->max_tokens : s->p.max_tokens;
    kvl_gen_params gp = kvl_gen_default_params();
    gp.sampling = o->sampling ? *o->sampling : s->p.sampling;
    if (!o->sampling) gp.sampling.seed = s->p.sampling.seed + (uint64_t)o->index;
    gp.max_tokens = max_tokens;
    gp.ignore_eos = o->ignore_eos;
    gp.cancel = o->cancel;
    gp.on_token = job_token;
    gp.on_logits = job_logits;
    gp.on_done = job_done;
    if (o->prefill_only) gp.on_step = job_prefill;
    gp.user = j;
    if (j->has_pr) {
        kvl_think_params tp = s->p.think;
        if (o->mode >= 0) tp.mode = (kvl_adapt_mode)o->mode;
        tp.max_tokens = max_tokens;
        tp.ignore_eos = o->ignore_eos;
        tp.on_token = NULL;
        st = kvl_think_ctl_new(s->m, &j->pr, &tp, &j->ctl);
        if (!st) kvl_think_ctl_attach(j->ctl, &gp);
    } else {
        gp.prompt = j->ids;
        gp.n_prompt = n_need;
    }
    if (!st) st = kvl_sched_submit(s->sched, &gp, &j->g, NULL);
    if (st) {
        job_free(j);
        return st;
    }
    job_link(j);
    return KVL_OK;
}

kvl_status kvl_session_submit(kvl_session *s, const kvl_chat_msg *msgs, int n, const kvl_answer_opts *o) {
    if (!s || !msgs || n < 1 || !o) return kvl_fail(KVL_ERR_ARG, "kvl_session_submit: bad argument");
    if (o->prefill_only && s->p.controller)
        return kvl_fail(KVL_ERR_ARG, "prefill_only does not apply to answers under the thinking controller");
    job *j = job_new(s, o);
    if (!j) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    int n_need = 0;
    kvl_status st = build_prompt(j, msgs, n, &n_need);
    if (st) {
        job_free(j);
        return st;
    }
    return job_submit(j, n_need);
}

kvl_status kvl_session_submit_ids(kvl_session *s, const int32_t *ids, int n, const kvl_answer_opts *o) {
    if (!s || !ids || n < 1 || !o) return kvl_fail(KVL_ERR_ARG, "kvl_session_submit_ids: bad argument");
    const int V = kvl_model_hparams(s->m)->n_vocab;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return kvl_fail(KVL_ERR_ARG, "prompt token %d is %d, outside the vocabulary [0, %d)", i, ids[i], V);
    job *j = job_new(s, o);
    if (!j || !(j->ids = malloc((size_t)n * sizeof *ids))) {
        if (j) job_free(j);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    memcpy(j->ids, ids, (size_t)n * sizeof *ids);
    return job_submit(j, n);
}

const kvl_session_params *kvl_session_params_of(const kvl_session *s) { return s ? &s->p : NULL; }
kvl_model *kvl_session_model(kvl_session *s) { return s ? s->m : NULL; }

/* Answers are delivered from inside the step, as their requests end. */
kvl_status kvl_session_step(kvl_session *s, int *n_left) {
    if (!s) return kvl_fail(KVL_ERR_ARG, "kvl_session_step: NULL session");
    return kvl_sched_step(s->sched, n_left);
}

kvl_status kvl_session_run(kvl_session *s) {
    int left = 1;
    while (left > 0) KVL_TRY(kvl_session_step(s, &left));
    return KVL_OK;
}
