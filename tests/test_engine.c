/* The generation engine and its continuous-batching scheduler against one-at-a-time decoding:
 *   - the reference is a plain greedy loop over kvl_eval (no engine), one request at a time;
 *   - the scheduler runs 9 requests on 3 slots (waiting requests take slots as they free), with prompts of 3..40
 *     tokens (some sharing a prefix, which must be copied, not evaluated), different max_tokens and stop tokens;
 *     greedy tokens must be identical and each finished sequence must hold the answer span (prompt + tokens - 1);
 *   - a hook that inserts tokens mid-generation, a cancelled request, a prompt longer than the context;
 *   - a session on the shipped model (tokenizer, chat template, thinking controller in fixed fast/slow modes): the
 *     answers of 4 slots at once equal those of 1 slot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "test_util.h"

enum { NREQ = 9, MAXT = 24 };

/* Sanitizer builds (unoptimised, instrumented) are ~50x slower: fewer answers there, the same checks. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
enum { N_ANSWERS = 4, ANSWER_TOKENS = 16 };
#else
enum { N_ANSWERS = 12, ANSWER_TOKENS = 48 };
#endif

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Greedy with kvl_eval: stops at max_tokens, at a stop token, or at an inserted pair after `insert_at` tokens. */
static int reference(kvl_model *m, const int32_t *prompt, int n, int max_tokens, int32_t stop, int insert_at,
                     const int32_t *ins, int32_t *out) {
    const int V = kvl_model_hparams(m)->n_vocab;
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 96;
    p.n_threads = 2;
    kvl_ctx *c = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
    CHECK(kvl_eval(c, prompt, n, KVL_LOGITS_LAST) == KVL_OK);
    int k = 0;
    while (k < max_tokens) {
        int32_t t = argmax(kvl_logits(c, 0), V);
        out[k++] = t;
        if (t == stop || k >= max_tokens) break;
        CHECK(kvl_eval(c, &t, 1, KVL_LOGITS_LAST) == KVL_OK);
        if (k == insert_at) {
            out[k++] = ins[0];
            out[k++] = ins[1];
            CHECK(kvl_eval(c, ins, 2, KVL_LOGITS_LAST) == KVL_OK);
        }
    }
    kvl_ctx_free(c);
    return k;
}

typedef struct {
    int insert_at;
    int32_t ins[2];
    int done_pos;    /* positions the sequence held when the request ended */
    int n_done;
} hook_state;

static kvl_status insert_hook(void *user, const kvl_view *v, kvl_gen_event *ev) {
    hook_state *h = user;
    (void)v;
    if (!ev->after_prompt && ev->n_generated == h->insert_at && ev->last != h->ins[1]) {
        ev->insert = h->ins;
        ev->n_insert = 2;
    }
    return KVL_OK;
}

static void done_hook(void *user, const kvl_view *v, const kvl_gen_result *r) {
    hook_state *h = user;
    (void)r;
    h->done_pos = v ? kvl_view_n_pos(v) : -1;
    h->n_done++;
}

static void scheduler_vs_alone(void) {
    kvl_model *m = NULL;
    CHECK(kvl_model_random("tiny", KVL_TYPE_F32, 5, &m) == KVL_OK);
    const int V = kvl_model_hparams(m)->n_vocab;
    int32_t prompts[NREQ][40], want[NREQ][MAXT + 4], stop[NREQ];
    int lens[NREQ], max_t[NREQ], n_want[NREQ];
    hook_state hs[NREQ];
    for (int q = 0; q < NREQ; q++) {
        lens[q] = 3 + (q * 13) % 38;
        for (int t = 0; t < lens[q]; t++) prompts[q][t] = (t * 7919 + 977 * q + 5) % V;
        if (q == 5 || q == 8) /* share request 2's prompt but for the last token(s) */
            for (int t = 0; t < lens[q] - 1 && t < lens[2]; t++) prompts[q][t] = prompts[2][t];
        max_t[q] = 4 + (q * 5) % (MAXT - 4);
        hs[q] = (hook_state){.insert_at = q == 4 ? 3 : -1, .ins = {7, 9}};
    }
    for (int q = 0; q < NREQ; q++) {
        stop[q] = -1;
        n_want[q] = reference(m, prompts[q], lens[q], max_t[q], -1, hs[q].insert_at, hs[q].ins, want[q]);
        if (q == 6 && n_want[q] > 2) { /* make its second token a stop token */
            stop[q] = want[q][1];
            n_want[q] = reference(m, prompts[q], lens[q], max_t[q], stop[q], -1, NULL, want[q]);
        }
    }
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 96;
    p.n_threads = 2;
    p.n_seq_max = 3;
    kvl_ctx *c = NULL;
    kvl_sched *s = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK && kvl_sched_new(c, 0, &s) == KVL_OK);
    kvl_gen_result res[NREQ + 2];
    int ids[NREQ + 2];
    for (int q = 0; q < NREQ; q++) {
        kvl_gen_params g = kvl_gen_default_params();
        g.prompt = prompts[q];
        g.n_prompt = lens[q];
        g.max_tokens = max_t[q];
        g.ignore_eos = true;
        if (stop[q] >= 0) g.stop_tokens = &stop[q], g.n_stop_tokens = 1;
        g.on_step = insert_hook;
        g.on_done = done_hook;
        g.user = &hs[q];
        CHECK_MSG(kvl_sched_submit(s, &g, &res[q], &ids[q]) == KVL_OK, "%s", kvl_last_error());
    }
    /* (request 4 ends on its inserted tokens, which were evaluated; the others on a sampled token, which is not) */
    /* one more that gets cancelled while it runs, and one whose prompt cannot fit */
    int32_t big[100];
    for (int t = 0; t < 100; t++) big[t] = t % V;
    kvl_gen_params g = kvl_gen_default_params();
    g.prompt = big;
    g.n_prompt = 20;
    g.max_tokens = 60;
    g.ignore_eos = true;
    CHECK(kvl_sched_submit(s, &g, &res[NREQ], &ids[NREQ]) == KVL_OK);
    g.n_prompt = 100;
    CHECK(kvl_sched_submit(s, &g, &res[NREQ + 1], &ids[NREQ + 1]) == KVL_OK);
    g.n_prompt = 0;
    CHECK(kvl_sched_submit(s, &g, &res[NREQ + 1], NULL) == KVL_ERR_ARG); /* bad requests are refused at once */
    big[0] = V;
    g.n_prompt = 3;
    CHECK(kvl_sched_submit(s, &g, &res[NREQ + 1], NULL) == KVL_ERR_ARG && strstr(kvl_last_error(), "vocabulary"));
    int left = 1, steps = 0;
    while (left > 0 && steps < 10000) {
        CHECK(kvl_sched_step(s, &left) == KVL_OK);
        if (++steps == 12) CHECK(kvl_sched_cancel(s, ids[NREQ]) == KVL_OK);
    }
    CHECK(left == 0);
    int same = 0;
    for (int q = 0; q < NREQ; q++) {
        const kvl_gen_result *r = &res[q];
        int eq = r->n_tokens == n_want[q] && !memcmp(r->tokens, want[q], (size_t)n_want[q] * sizeof(int32_t));
        same += eq;
        CHECK_MSG(eq, "request %d: %d tokens, %d wanted (stop %s)", q, r->n_tokens, n_want[q], r->stop);
        CHECK_MSG(hs[q].n_done == 1 && hs[q].done_pos == lens[q] + r->n_tokens - (q == 4 ? 0 : 1), "request %d: %d done, %d positions",
                  q, hs[q].n_done, hs[q].done_pos);
        CHECK(!strcmp(r->stop, q == 6 ? "stop" : "length"));
        CHECK(r->n_inserted == (q == 4 ? 2 : 0));
    }
    CHECK_MSG(res[5].n_prompt_cached == lens[5] - 1 && res[8].n_prompt_cached >= lens[2] - 1,
              "prefix reuse: %d of %d, %d", res[5].n_prompt_cached, lens[5], res[8].n_prompt_cached);
    CHECK(!strcmp(res[NREQ].stop, "cancel") && res[NREQ].n_tokens < 60);
    CHECK(!strcmp(res[NREQ + 1].stop, "context") && res[NREQ + 1].n_tokens == 0);
    long rows, n_steps, one_at_a_time = 0;
    kvl_sched_stats(s, &rows, &n_steps);
    for (int q = 0; q < NREQ; q++) one_at_a_time += res[q].n_tokens; /* steps alone: a prompt, then a token a step */
    printf("scheduler: %d of %d requests identical to decoding alone, %ld rows in %ld steps (%ld one at a time)\n",
           same, NREQ, rows, n_steps, one_at_a_time);
    CHECK_MSG(n_steps * 2 < one_at_a_time, "3 slots took %ld steps for what alone takes %ld", n_steps, one_at_a_time);
    for (int q = 0; q < NREQ + 2; q++) kvl_gen_result_free(&res[q]);
    kvl_sched_free(s);
    kvl_ctx_free(c);
    kvl_model_free(m);
}

typedef struct {
    char *text[16];
    int n_tokens[16], n_prompt[16], cached[16], scored[16];
    double kv_mag[16];
    const char *stop[16];
    int n;
} answers;

static void keep_answer(void *user, kvl_answer *a) {
    answers *s = user;
    CHECK_MSG(a->status == KVL_OK, "%s", a->error);
    s->text[a->index] = strdup(a->text ? a->text : "");
    s->n_tokens[a->index] = a->n_tokens;
    s->n_prompt[a->index] = a->n_prompt;
    s->cached[a->index] = a->n_prompt_cached;
    s->scored[a->index] = a->has_scores;
    s->kv_mag[a->index] = a->scores.kv_token.mag;
    s->stop[a->index] = a->stop;
    s->n++;
}

/* The shipped model through a session: fast and slow answers of 6 problems, on 1 slot and on 4. */
static void session_parallel(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/kvlens-think-2-q8_0.gguf", kvl_test_env("KVL_SRC", "."));
    kvl_model *m = NULL;
    if (kvl_model_load(path, &m) != KVL_OK) {
        CHECK_MSG(0, "%s", kvl_last_error());
        return;
    }
    const char *q[6] = {"What is 3 + 4?", "Mia has 12 apples. She buys 7 more. How many apples does she have?",
                        "Tom had 40 coins and gave away 15. How many coins are left?", "What is 9 times 6?",
                        "A box holds 8 pens. How many pens are in 5 boxes?", "What is 100 minus 37?"};
    answers out[2];
    memset(out, 0, sizeof out);
    for (int run = 0; run < 2; run++) {
        kvl_session_params sp = kvl_session_default_params();
        sp.ctx.n_threads = 2;
        sp.ctx.n_seq_max = run ? 4 : 1;
        sp.max_tokens = ANSWER_TOKENS;
        sp.controller = true;
        sp.think.mode = KVL_ADAPT_FAST; /* each answer sets its own */
        sp.scores = true;                /* each answer scored from its own sequence before the slot is reused */
        kvl_session *s = NULL;
        CHECK_MSG(kvl_session_new(m, &sp, &s) == KVL_OK, "%s", kvl_last_error());
        if (!s) break;
        for (int i = 0; i < N_ANSWERS; i++) {
            kvl_chat_msg msg = {"user", q[i / 2]};
            kvl_answer_opts o = {.index = i, .mode = i % 2 ? KVL_ADAPT_SLOW : KVL_ADAPT_FAST, .done = keep_answer,
                                 .user = &out[run]};
            CHECK(kvl_session_submit(s, &msg, 1, &o) == KVL_OK);
        }
        CHECK(kvl_session_run(s) == KVL_OK);
        kvl_session_free(s);
    }
    int same = 0;
    for (int i = 0; i < N_ANSWERS; i++) {
        int eq = out[0].text[i] && out[1].text[i] && !strcmp(out[0].text[i], out[1].text[i]) &&
                 out[0].n_tokens[i] == out[1].n_tokens[i] && out[0].n_prompt[i] == out[1].n_prompt[i];
        same += eq;
        CHECK_MSG(eq, "answer %d differs: '%s' / '%s'", i, out[0].text[i], out[1].text[i]);
        CHECK(out[0].n_tokens[i] > 0);
        /* the slow answer starts from the fast one's prefix (the controller's prompt), copied not evaluated */
        if (i % 2) CHECK_MSG(out[1].cached[i] > 10, "answer %d: %d prompt tokens copied", i, out[1].cached[i]);
        CHECK(out[0].scored[i] && out[1].scored[i]);
        CHECK_MSG(fabs(out[0].kv_mag[i] - out[1].kv_mag[i]) <= 1e-3 * fabs(out[0].kv_mag[i]), "answer %d: KV-CoE mag %g / %g",
                  i, out[0].kv_mag[i], out[1].kv_mag[i]);
    }
    printf("session: %d of %d answers (%d problems, fast and slow) identical on 4 slots and on 1\n", same, N_ANSWERS,
           N_ANSWERS / 2);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < N_ANSWERS; i++) free(out[r].text[i]);
    kvl_model_free(m);
}

int main(void) {
    scheduler_vs_alone();
    session_parallel();
    return kvl_test_result("engine");
}
