/* The generation engine and its continuous-batching scheduler (kvlens.h, "The generation engine").
 *
 * Each request is a small state machine over its sequence slot: it has tokens to feed (its prompt, tokens a hook
 * inserted, or the token it just sampled); a step puts the rows of every request's feed into one batch (decode rows
 * first, then prompt rows up to the step's row budget), decodes it, and for each request whose feed completed calls
 * its hook and then samples (or feeds what the hook inserted). Slots remember the tokens their cache holds, so a new
 * request starts from the longest prefix any slot has (copied, or kept in place). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

#define ROW_BUDGET 512 /* rows per step at most (prompt rows beyond it wait for the next step) */

typedef enum { FEED_PROMPT, FEED_INSERT, FEED_SAMPLED } feed_kind;

typedef struct req {
    kvl_gen_params p;
    kvl_gen_result *out;
    int id;
    int slot;                /* -1 while waiting */
    bool cancelled;
    kvl_sampler *own;        /* the request's sampler unless p.sampler */
    const int32_t *feed;     /* tokens to evaluate: feed[fed..n_feed) */
    int n_feed, fed;
    feed_kind kind;
    int32_t sampled;         /* the token behind a FEED_SAMPLED feed */
    int row_last;            /* batch row of its feed's last token in this step, -1 when none */
    int tok_cap;
    double t_admit, t_first;
} req;

struct kvl_sched {
    kvl_ctx *c;
    int n_slots;
    req **active;            /* [n_slots] */
    int32_t **held;          /* [n_slots] the tokens each slot's cache holds, positions 0.. */
    int *n_held, *cap_held;
    req **wait;              /* waiting requests, FIFO: wait[w0..n_wait) */
    int w0, n_wait, cap_wait;
    kvl_batch batch;
    int next_id;
    long rows, steps;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

kvl_gen_params kvl_gen_default_params(void) {
    kvl_gen_params p;
    memset(&p, 0, sizeof p);
    p.sampling = kvl_sampler_default_params();
    p.max_tokens = 1024;
    return p;
}

void kvl_gen_result_free(kvl_gen_result *r) {
    if (!r) return;
    free(r->tokens);
    r->tokens = NULL;
    r->n_tokens = 0;
}

kvl_status kvl_sched_new(kvl_ctx *c, int n_slots, kvl_sched **out) {
    if (!c || !out) return kvl_fail(KVL_ERR_ARG, "kvl_sched_new: NULL argument");
    *out = NULL;
    if (n_slots == 0) n_slots = kvl_ctx_n_seq(c);
    if (n_slots < 1 || n_slots > kvl_ctx_n_seq(c))
        return kvl_fail(KVL_ERR_ARG, "%d slots asked of a context with %d sequences", n_slots, kvl_ctx_n_seq(c));
    kvl_sched *s = calloc(1, sizeof *s);
    if (!s) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    s->c = c;
    s->n_slots = n_slots;
    s->active = calloc(n_slots, sizeof *s->active);
    s->held = calloc(n_slots, sizeof *s->held);
    s->n_held = calloc(n_slots, sizeof *s->n_held);
    s->cap_held = calloc(n_slots, sizeof *s->cap_held);
    const int cap = n_slots > ROW_BUDGET ? n_slots : ROW_BUDGET;
    kvl_status st = s->active && s->held && s->n_held && s->cap_held ? kvl_batch_init(&s->batch, cap)
                                                                      : kvl_fail(KVL_ERR_NOMEM, "out of memory");
    for (int q = 0; !st && q < n_slots; q++) st = kvl_seq_clear(c, q);
    if (st) {
        kvl_sched_free(s);
        return st;
    }
    *out = s;
    return KVL_OK;
}

static void req_free(req *r) {
    if (!r) return;
    kvl_sampler_free(r->own);
    free(r);
}

void kvl_sched_free(kvl_sched *s) {
    if (!s) return;
    for (int q = 0; s->active && q < s->n_slots; q++) req_free(s->active[q]);
    for (int i = s->w0; i < s->n_wait; i++) req_free(s->wait[i]);
    for (int q = 0; s->held && q < s->n_slots; q++) free(s->held[q]);
    free(s->active);
    free(s->held);
    free(s->n_held);
    free(s->cap_held);
    free(s->wait);
    kvl_batch_free(&s->batch);
    free(s);
}

kvl_status kvl_sched_submit(kvl_sched *s, const kvl_gen_params *p, kvl_gen_result *out, int *id) {
    if (!s || !p || !out) return kvl_fail(KVL_ERR_ARG, "kvl_sched_submit: NULL argument");
    memset(out, 0, sizeof *out);
    out->seq = -1;
    out->stop = "error";
    if (!p->prompt || p->n_prompt < 1) return kvl_fail(KVL_ERR_ARG, "a request needs a prompt of at least one token");
    if (p->max_tokens < 1) return kvl_fail(KVL_ERR_ARG, "max_tokens must be at least 1 (%d)", p->max_tokens);
    if (p->n_stop_tokens < 0 || (p->n_stop_tokens > 0 && !p->stop_tokens))
        return kvl_fail(KVL_ERR_ARG, "bad stop-token list");
    const int V = kvl_model_hparams(kvl_ctx_model(s->c))->n_vocab;
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= V)
            return kvl_fail(KVL_ERR_ARG, "prompt token %d is %d, outside the vocabulary [0, %d)", i, p->prompt[i], V);
    req *r = calloc(1, sizeof *r);
    if (!r) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    r->p = *p;
    r->out = out;
    r->slot = -1;
    r->row_last = -1;
    if (!p->sampler) {
        kvl_status st = kvl_sampler_new(&p->sampling, &r->own);
        if (st) {
            free(r);
            return st;
        }
    }
    if (s->n_wait == s->cap_wait) {
        if (s->w0 > 0) { /* reuse the room of admitted requests */
            memmove(s->wait, s->wait + s->w0, (size_t)(s->n_wait - s->w0) * sizeof *s->wait);
            s->n_wait -= s->w0;
            s->w0 = 0;
        }
        if (s->n_wait == s->cap_wait) {
            int nc = s->cap_wait ? 2 * s->cap_wait : 16;
            req **w = realloc(s->wait, (size_t)nc * sizeof *w);
            if (!w) {
                req_free(r);
                return kvl_fail(KVL_ERR_NOMEM, "out of memory");
            }
            s->wait = w;
            s->cap_wait = nc;
        }
    }
    r->id = s->next_id++;
    s->wait[s->n_wait++] = r;
    out->stop = "";
    if (id) *id = r->id;
    return KVL_OK;
}

kvl_status kvl_sched_cancel(kvl_sched *s, int id) {
    if (!s) return kvl_fail(KVL_ERR_ARG, "kvl_sched_cancel: NULL scheduler");
    for (int q = 0; q < s->n_slots; q++)
        if (s->active[q] && s->active[q]->id == id) return s->active[q]->cancelled = true, KVL_OK;
    for (int i = s->w0; i < s->n_wait; i++)
        if (s->wait[i]->id == id) return s->wait[i]->cancelled = true, KVL_OK;
    return kvl_fail(KVL_ERR_ARG, "no running or waiting request %d", id);
}

void kvl_sched_stats(const kvl_sched *s, long *rows, long *steps) {
    if (rows) *rows = s ? s->rows : 0;
    if (steps) *steps = s ? s->steps : 0;
}

/* --------------------------------------------------------------------------------------------------------- */

static kvl_status held_push(kvl_sched *s, int q, int32_t t) {
    if (s->n_held[q] == s->cap_held[q]) {
        int nc = s->cap_held[q] ? 2 * s->cap_held[q] : 256;
        int32_t *h = realloc(s->held[q], (size_t)nc * sizeof *h);
        if (!h) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        s->held[q] = h;
        s->cap_held[q] = nc;
    }
    s->held[q][s->n_held[q]++] = t;
    return KVL_OK;
}

static kvl_status push_token(req *r, int32_t t, bool inserted) {
    kvl_gen_result *o = r->out;
    if (o->n_tokens == r->tok_cap) {
        int nc = r->tok_cap ? 2 * r->tok_cap : 64;
        int32_t *a = realloc(o->tokens, (size_t)nc * sizeof *a);
        if (!a) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
        o->tokens = a;
        r->tok_cap = nc;
    }
    o->tokens[o->n_tokens++] = t;
    if (inserted) o->n_inserted++;
    else o->n_sampled++;
    if (r->p.on_token) r->p.on_token(r->p.user, t, inserted);
    return KVL_OK;
}

/* End a request: its result, its done hook (the slot's cache still its own), the slot freed. */
static void finish(kvl_sched *s, req *r, const char *stop, kvl_status st) {
    kvl_gen_result *o = r->out;
    const double t = now();
    o->stop = stop;
    o->status = st;
    if (st) snprintf(o->error, sizeof o->error, "%s", kvl_last_error());
    if (r->t_first > 0) {
        o->t_prompt = r->t_first - r->t_admit;
        o->t_gen = t - r->t_first;
    } else {
        o->t_prompt = t - r->t_admit;
    }
    if (r->slot >= 0) {
        if (r->p.on_done) r->p.on_done(r->p.user, kvl_seq_view(s->c, r->slot), o);
        s->active[r->slot] = NULL;
    } else if (r->p.on_done) {
        r->p.on_done(r->p.user, NULL, o);
    }
    req_free(r);
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = 0, m = na < nb ? na : nb;
    while (n < m && a[n] == b[n]) n++;
    return n;
}

/* Give waiting requests the free slots. A request starts from the longest prefix of its prompt that some slot holds
 * (at most all but its last token, whose logits it needs): in place when that is its own slot, else copied. */
static kvl_status admit(kvl_sched *s) {
    const int n_ctx = kvl_ctx_n_ctx(s->c);
    int w = s->w0; /* cancelled waiting requests end at once, wherever they wait */
    for (int i = s->w0; i < s->n_wait; i++) {
        req *r = s->wait[i];
        if (r->cancelled || (r->p.cancel && *r->p.cancel)) {
            r->t_admit = now();
            finish(s, r, "cancel", KVL_OK);
        } else {
            s->wait[w++] = r;
        }
    }
    s->n_wait = w;
    while (s->w0 < s->n_wait) {
        req *r = s->wait[s->w0];
        if (r->cancelled || (r->p.cancel && *r->p.cancel)) {
            s->w0++;
            r->t_admit = now();
            finish(s, r, "cancel", KVL_OK);
            continue;
        }
        int best_free = -1, best_free_n = -1, best_src = -1, best_src_n = 0;
        for (int q = 0; q < s->n_slots; q++) {
            int n = common_prefix(s->held[q], s->n_held[q], r->p.prompt, r->p.n_prompt - 1);
            if (!s->active[q] && n > best_free_n) best_free = q, best_free_n = n;
            if (n > best_src_n) best_src = q, best_src_n = n;
        }
        if (best_free < 0) break; /* every slot is busy */
        /* a running request still evaluating a prompt that shares more with this one: wait until it is in the
         * cache, then copy it (fast and slow answers of one question share their prefix this way) */
        bool wait = false;
        for (int q = 0; q < s->n_slots && !wait; q++) {
            const req *o = s->active[q];
            if (o && o->kind == FEED_PROMPT && o->feed == o->p.prompt &&
                common_prefix(o->p.prompt, o->p.n_prompt, r->p.prompt, r->p.n_prompt - 1) > best_src_n)
                wait = true;
        }
        if (wait) break;
        s->w0++;
        const int q = best_free;
        r->slot = q;
        r->t_admit = now();
        r->out->seq = q;
        s->active[q] = r;
        if (r->p.n_prompt > n_ctx) {
            kvl_seq_clear(s->c, q);
            s->n_held[q] = 0;
            finish(s, r, "context", KVL_OK);
            continue;
        }
        int keep = best_free_n;
        kvl_status st = KVL_OK;
        if (best_src_n > best_free_n) { /* another slot holds more of the prompt: copy it */
            st = kvl_seq_copy_prefix(s->c, q, best_src, best_src_n);
            if (!st) {
                s->n_held[q] = 0;
                for (int i = 0; !st && i < best_src_n; i++) st = held_push(s, q, s->held[best_src][i]);
                keep = best_src_n;
            }
        } else {
            st = kvl_seq_truncate(s->c, q, keep);
            s->n_held[q] = keep;
        }
        if (st) {
            kvl_seq_clear(s->c, q);
            s->n_held[q] = 0;
            finish(s, r, "error", st);
            continue;
        }
        r->feed = r->p.prompt;
        r->n_feed = r->p.n_prompt;
        r->fed = keep;
        r->kind = FEED_PROMPT;
        r->out->n_prompt = r->p.n_prompt;
        r->out->n_prompt_cached = keep;
    }
    return KVL_OK;
}

/* Rows of r's feed into the batch, at most `budget`; the row completing the feed asks for logits. */
static kvl_status add_rows(kvl_sched *s, req *r, int *budget) {
    const int q = r->slot;
    int n = r->n_feed - r->fed;
    if (n > *budget) n = *budget;
    for (int i = 0; i < n; i++) {
        const int32_t t = r->feed[r->fed];
        const bool last = r->fed + 1 == r->n_feed;
        KVL_TRY(kvl_batch_add(&s->batch, t, s->n_held[q], q, last));
        KVL_TRY(held_push(s, q, t));
        r->fed++;
        if (last) r->row_last = s->batch.n - 1;
    }
    *budget -= n;
    return KVL_OK;
}

static bool is_stop_token(const req *r, int32_t t) {
    for (int i = 0; i < r->p.n_stop_tokens; i++)
        if (r->p.stop_tokens[i] == t) return true;
    return false;
}

/* After r's feed completed: the hook, then a sample (or the hook's insertion). */
static void advance(kvl_sched *s, req *r) {
    const kvl_model *m = kvl_ctx_model(s->c);
    const int V = kvl_model_hparams(m)->n_vocab, n_ctx = kvl_ctx_n_ctx(s->c);
    kvl_gen_result *o = r->out;
    const int q = r->slot;
    if (r->p.on_step) {
        kvl_gen_event ev = {.n_prompt = o->n_prompt, .n_generated = o->n_tokens,
                            .last = r->kind == FEED_PROMPT ? -1 : r->feed[r->n_feed - 1],
                            .after_prompt = r->kind == FEED_PROMPT};
        kvl_status st = r->p.on_step(r->p.user, kvl_seq_view(s->c, q), &ev);
        if (st) return finish(s, r, "error", st);
        if (ev.stop) return finish(s, r, "hook", KVL_OK);
        if (ev.n_insert > 0) {
            if (s->n_held[q] + ev.n_insert >= n_ctx) return finish(s, r, "context", KVL_OK);
            if (ev.insert_is_prompt) {
                o->n_prompt += ev.n_insert;
            } else {
                for (int i = 0; i < ev.n_insert; i++) {
                    st = push_token(r, ev.insert[i], true);
                    if (st) return finish(s, r, "error", st);
                }
            }
            r->feed = ev.insert;
            r->n_feed = ev.n_insert;
            r->fed = 0;
            r->kind = ev.insert_is_prompt ? FEED_PROMPT : FEED_INSERT;
            return;
        }
    }
    if (o->n_tokens >= r->p.max_tokens) return finish(s, r, "length", KVL_OK);
    if (r->cancelled || (r->p.cancel && *r->p.cancel)) return finish(s, r, "cancel", KVL_OK);
    const float *logits = kvl_batch_logits(s->c, r->row_last);
    if (!logits) return finish(s, r, "error", kvl_fail(KVL_ERR_ARG, "internal: no logits for request %d", r->id));
    if (r->t_first == 0) r->t_first = now();
    if (r->p.on_logits) r->p.on_logits(r->p.user, logits, V);
    const int32_t t = kvl_sample(r->p.sampler ? r->p.sampler : r->own, logits, V);
    kvl_status st = push_token(r, t, false);
    if (st) return finish(s, r, "error", st);
    if (!r->p.ignore_eos && kvl_model_is_eog(m, t)) return finish(s, r, "eog", KVL_OK);
    if (is_stop_token(r, t)) return finish(s, r, "stop", KVL_OK);
    if (o->n_tokens >= r->p.max_tokens) return finish(s, r, "length", KVL_OK);
    if (s->n_held[q] >= n_ctx) return finish(s, r, "context", KVL_OK);
    r->sampled = t;
    r->feed = &r->sampled;
    r->n_feed = 1;
    r->fed = 0;
    r->kind = FEED_SAMPLED;
}

kvl_status kvl_sched_step(kvl_sched *s, int *n_left) {
    if (!s) return kvl_fail(KVL_ERR_ARG, "kvl_sched_step: NULL scheduler");
    KVL_TRY(admit(s));
    kvl_batch_clear(&s->batch);
    int budget = s->batch.cap;
    for (int q = 0; q < s->n_slots; q++)
        if (s->active[q]) s->active[q]->row_last = -1;
    /* decode rows first (one each), then prompt and inserted rows with what is left */
    for (int pass = 0; pass < 2; pass++)
        for (int q = 0; q < s->n_slots; q++) {
            req *r = s->active[q];
            if (!r || (pass == 0) != (r->kind == FEED_SAMPLED) || r->fed >= r->n_feed) continue;
            if (r->cancelled || (r->p.cancel && *r->p.cancel)) continue;
            KVL_TRY(add_rows(s, r, &budget));
        }
    if (s->batch.n > 0) {
        kvl_status st = kvl_decode(s->c, &s->batch);
        if (st) { /* the rows were not evaluated: forget them from the slots' token lists */
            for (int q = 0; q < s->n_slots; q++) s->n_held[q] = kvl_seq_n_pos(s->c, q);
            return st;
        }
        s->rows += s->batch.n;
        s->steps++;
    }
    for (int q = 0; q < s->n_slots; q++) {
        req *r = s->active[q];
        if (!r) continue;
        if (r->cancelled || (r->p.cancel && *r->p.cancel)) {
            finish(s, r, "cancel", KVL_OK);
            continue;
        }
        if (r->fed < r->n_feed || r->row_last < 0) continue; /* its feed goes on next step */
        advance(s, r);
    }
    if (n_left) {
        int n = s->n_wait - s->w0;
        for (int q = 0; q < s->n_slots; q++) n += s->active[q] != NULL;
        *n_left = n;
    }
    return KVL_OK;
}

kvl_status kvl_sched_run(kvl_sched *s) {
    int left = 1;
    while (left > 0) KVL_TRY(kvl_sched_step(s, &left));
    return KVL_OK;
}

kvl_status kvl_generate(kvl_ctx *c, const kvl_gen_params *p, kvl_gen_result *out) {
    if (out) memset(out, 0, sizeof *out);
    kvl_sched *s;
    KVL_TRY(kvl_sched_new(c, 1, &s));
    kvl_status st = kvl_sched_submit(s, p, out, NULL);
    if (!st) st = kvl_sched_run(s);
    kvl_sched_free(s);
    if (!st && out->status) st = kvl_fail(out->status, "%s", out->error);
    return st;
}
