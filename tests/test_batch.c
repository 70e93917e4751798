/* Sequences and batches: logits and caches of sequences decoded together equal those of each decoded alone.
 *   - batches that mix prompt rows of some sequences (long enough for the matrix-product attention) with single
 *     decode rows of others, and a sequence that joins mid-run;
 *   - prefix copies (a prompt evaluated once, continued in two slots), truncation and re-decoding, a sequence
 *     cleared and reused for another prompt;
 *   - two contexts evaluating at once in two threads, with different thread counts;
 *   - rejected batches (bad sequence, position that does not append, overflow) change nothing.
 * The reference is kvl_eval of one sequence in a one-slot context. Float weights: within 1e-5 relative (the batched
 * rows go through the same kernels; only the split of work differs). Q8_0 weights: the activations of a row are
 * quantized per row whatever the batch, so the same bound holds; it is checked too. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "fixture_util.h"

enum { NSEQ = 4, STEPS = 6, MAXP = 40 };

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* One sequence alone: prompt, then STEPS greedy tokens; logits of the prompt's last row and of every step. */
typedef struct {
    int n_prompt;
    int32_t tok[MAXP + STEPS];   /* prompt, then the greedy tokens */
    float *logits;               /* [STEPS + 1][V] */
    float *k_last;               /* K of the last layer after all steps [n_kv][n][hd] */
} ref_seq;

static kvl_ctx *new_ctx(kvl_model *m, int n_seq, int n_threads) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 64;
    p.n_threads = n_threads;
    p.n_seq_max = n_seq;
    kvl_ctx *c = NULL;
    CHECK_MSG(kvl_ctx_new(m, &p, &c) == KVL_OK, "%s", kvl_last_error());
    return c;
}

static void run_alone(kvl_model *m, ref_seq *r, int n_threads) {
    const kvl_hparams *hp = kvl_model_hparams(m);
    const int V = hp->n_vocab;
    kvl_ctx *c = new_ctx(m, 1, n_threads);
    CHECK(kvl_eval(c, r->tok, r->n_prompt, KVL_LOGITS_LAST) == KVL_OK);
    for (int s = 0; s <= STEPS; s++) {
        memcpy(r->logits + (size_t)s * V, kvl_logits(c, 0), V * sizeof(float));
        if (s == STEPS) break;
        r->tok[r->n_prompt + s] = argmax(kvl_logits(c, 0), V);
        CHECK(kvl_eval(c, &r->tok[r->n_prompt + s], 1, KVL_LOGITS_LAST) == KVL_OK);
    }
    CHECK(kvl_cache_k(c, hp->n_layer - 1, 0, r->n_prompt + STEPS, r->k_last) == KVL_OK);
    kvl_ctx_free(c);
}

static void check_rows(const float *got, const float *want, int V, double bound, const char *what, int seq, int step,
                       double *worst) {
    CHECK_MSG(got != NULL, "%s: seq %d step %d has no logits", what, seq, step);
    if (!got) return;
    double e = fx_rel_err(got, want, V);
    if (e > *worst) *worst = e;
    CHECK_MSG(e <= bound, "%s: seq %d step %d: logits differ by %.3g (bound %g)", what, seq, step, e, bound);
}

/* Sequences 0 and 1 start together (prompts of 19 and 5 rows: matrix-product and row attention in one batch);
 * sequence 2 joins at step 2 with its prompt while 0 and 1 decode; sequence 3 starts from a copy of sequence 0's
 * prompt minus its last 3 tokens and evaluates those 3 itself. */
static void mixed_batches(kvl_model *m, ref_seq *ref, double bound, const char *what) {
    const kvl_hparams *hp = kvl_model_hparams(m);
    const int V = hp->n_vocab;
    kvl_ctx *c = new_ctx(m, NSEQ, 2);
    kvl_batch b;
    CHECK(kvl_batch_init(&b, 128) == KVL_OK);
    int done[NSEQ] = {0}, start[NSEQ] = {0, 0, 2, 3}, fed[NSEQ] = {0};
    double worst = 0;
    for (int step = 0; step < 3 + STEPS + 1; step++) {
        kvl_batch_clear(&b);
        int last_row[NSEQ];
        for (int q = 0; q < NSEQ; q++) {
            last_row[q] = -1;
            if (step < start[q] || done[q] > STEPS) continue;
            if (q == 3 && step == start[q]) { /* the shared prefix, copied instead of evaluated */
                const int n = ref[0].n_prompt - 3;
                CHECK(kvl_seq_n_pos(c, 0) >= n);
                CHECK(kvl_seq_copy_prefix(c, 3, 0, n) == KVL_OK && kvl_seq_n_pos(c, 3) == n);
                fed[q] = n;
            }
            const int upto = done[q] == 0 ? ref[q].n_prompt : ref[q].n_prompt + done[q];
            for (int t = fed[q]; t < upto; t++) {
                CHECK(kvl_batch_add(&b, ref[q].tok[t], t, q, t == upto - 1) == KVL_OK);
                last_row[q] = b.n - 1;
            }
            fed[q] = upto;
        }
        if (b.n == 0) break;
        CHECK_MSG(kvl_decode(c, &b) == KVL_OK, "%s", kvl_last_error());
        for (int q = 0; q < NSEQ; q++) {
            if (last_row[q] < 0) continue;
            check_rows(kvl_batch_logits(c, last_row[q]), ref[q].logits + (size_t)done[q] * V, V, bound, what, q,
                       done[q], &worst);
            done[q]++;
        }
        for (int r = 0; r < b.n; r++) CHECK(b.logits[r] || kvl_batch_logits(c, r) == NULL);
    }
    for (int q = 0; q < NSEQ; q++) {
        CHECK_MSG(done[q] == STEPS + 1, "seq %d ran %d steps", q, done[q]);
        const int n = ref[q].n_prompt + STEPS, nk = hp->n_head_kv * n * hp->head_dim;
        float *k = malloc((size_t)nk * sizeof *k);
        CHECK(kvl_seq_cache_k(c, q, hp->n_layer - 1, 0, n, k) == KVL_OK);
        double e = fx_rel_err(k, ref[q].k_last, nk);
        CHECK_MSG(e <= bound, "%s: seq %d: K differs by %.3g", what, q, e);
        if (e > worst) worst = e;
        free(k);
    }
    printf("%s: mixed batches of %d sequences, worst relative error %.3g (bound %g)\n", what, NSEQ, worst, bound);

    /* truncate sequence 1 to its prompt and decode its steps again, one row per batch */
    CHECK(kvl_seq_truncate(c, 1, ref[1].n_prompt - 1) == KVL_OK && kvl_seq_n_pos(c, 1) == ref[1].n_prompt - 1);
    worst = 0;
    for (int s = 0; s <= STEPS; s++) {
        const int t = ref[1].n_prompt - 1 + s;
        kvl_batch_clear(&b);
        kvl_batch_add(&b, ref[1].tok[t], t, 1, true);
        CHECK(kvl_decode(c, &b) == KVL_OK);
        check_rows(kvl_batch_logits(c, 0), ref[1].logits + (size_t)s * V, V, bound, "truncated", 1, s, &worst);
    }
    /* clear sequence 2 and reuse its slot for sequence 0's prompt, next to the others' decoding */
    CHECK(kvl_seq_clear(c, 2) == KVL_OK && kvl_seq_n_pos(c, 2) == 0);
    kvl_batch_clear(&b);
    for (int t = 0; t < ref[0].n_prompt; t++) kvl_batch_add(&b, ref[0].tok[t], t, 2, t == ref[0].n_prompt - 1);
    CHECK(kvl_decode(c, &b) == KVL_OK);
    check_rows(kvl_batch_logits(c, ref[0].n_prompt - 1), ref[0].logits, V, bound, "reused slot", 2, 0, &worst);
    printf("%s: truncation and slot reuse, worst relative error %.3g\n", what, worst);

    /* rejected batches change nothing */
    const int before[NSEQ] = {kvl_seq_n_pos(c, 0), kvl_seq_n_pos(c, 1), kvl_seq_n_pos(c, 2), kvl_seq_n_pos(c, 3)};
    kvl_batch_clear(&b);
    kvl_batch_add(&b, 1, before[0], 0, true);
    kvl_batch_add(&b, 1, before[1], NSEQ, true); /* no such slot */
    CHECK(kvl_decode(c, &b) == KVL_ERR_ARG && strstr(kvl_last_error(), "sequence"));
    kvl_batch_clear(&b);
    kvl_batch_add(&b, 1, before[0] + 1, 0, true); /* skips a position */
    CHECK(kvl_decode(c, &b) == KVL_ERR_ARG && strstr(kvl_last_error(), "position"));
    kvl_batch_clear(&b);
    kvl_batch_add(&b, V, before[0], 0, true); /* bad token */
    CHECK(kvl_decode(c, &b) == KVL_ERR_ARG && strstr(kvl_last_error(), "vocabulary"));
    kvl_batch_clear(&b);
    for (int t = before[2]; t <= kvl_ctx_n_ctx(c); t++) kvl_batch_add(&b, 1, t, 2, false); /* one too many */
    CHECK(kvl_decode(c, &b) == KVL_ERR_RANGE);
    for (int q = 0; q < NSEQ; q++) CHECK(kvl_seq_n_pos(c, q) == before[q]);
    CHECK(kvl_seq_copy_prefix(c, 0, 1, before[1] + 1) == KVL_ERR_ARG);
    CHECK(kvl_seq_truncate(c, 0, before[0] + 1) == KVL_ERR_ARG);
    CHECK(kvl_seq_clear(c, NSEQ) == KVL_ERR_ARG && kvl_seq_view(c, NSEQ) == NULL && kvl_seq_n_pos(c, -2) == -1);
    CHECK(kvl_seq_clear(c, -1) == KVL_OK && kvl_seq_n_pos(c, 3) == 0);
    kvl_batch_free(&b);
    kvl_ctx_free(c);
}

typedef struct {
    kvl_model *m;
    ref_seq *r;
    int n_threads;
    float *logits;
    int failures; /* the thread's own count: CHECK's counters are the main thread's */
} thread_job;

/* run_alone's work without CHECK (whose counters are not for threads): the prompt and STEPS greedy tokens. */
static void *thread_main(void *arg) {
    thread_job *j = arg;
    const int V = kvl_model_hparams(j->m)->n_vocab;
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 64;
    p.n_threads = j->n_threads;
    kvl_ctx *c = NULL;
    if (kvl_ctx_new(j->m, &p, &c)) return j->failures++, NULL;
    j->failures += kvl_eval(c, j->r->tok, j->r->n_prompt, KVL_LOGITS_LAST) != KVL_OK;
    for (int s = 0; s <= STEPS && !j->failures; s++) {
        memcpy(j->logits + (size_t)s * V, kvl_logits(c, 0), V * sizeof(float));
        if (s < STEPS) j->failures += kvl_eval(c, &j->r->tok[j->r->n_prompt + s], 1, KVL_LOGITS_LAST) != KVL_OK;
    }
    kvl_ctx_free(c);
    return NULL;
}

/* Two contexts of one model in two threads at once (1 and 2 threads each) give the logits of a lone run. */
static void two_threads(kvl_model *m, ref_seq *ref) {
    const int V = kvl_model_hparams(m)->n_vocab;
    thread_job j[2] = {{m, &ref[0], 1, malloc(sizeof(float) * (STEPS + 1) * V), 0},
                       {m, &ref[1], 2, malloc(sizeof(float) * (STEPS + 1) * V), 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, thread_main, &j[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    double worst = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(j[i].failures == 0, "thread %d failed", i);
        double e = fx_rel_err(j[i].logits, ref[i].logits, (size_t)(STEPS + 1) * V);
        if (e > worst) worst = e;
        CHECK_MSG(e <= 1e-5, "thread %d: logits differ by %.3g", i, e);
        free(j[i].logits);
    }
    printf("two contexts in two threads: worst relative error %.3g\n", worst);
}

/* Texts embedded together (kvl_embed_many, one batch over 5 sequences) against one at a time (kvl_embed_ids). */
static void embed_many(kvl_model *m, const char *what) {
    const int V = kvl_model_hparams(m)->n_vocab;
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 64;
    p.n_threads = 2;
    p.n_seq_max = 5;
    kvl_ctx *c = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
    kvl_repr_config cfg[2] = {kvl_repr_embedding_config(), kvl_repr_classifier_config(8, 2)};
    cfg[0].layers.last_n = 2; /* the tiny shape has 2 layers */
    int dim[2];
    CHECK(kvl_repr_dim(m, &cfg[0], &dim[0]) == KVL_OK && kvl_repr_dim(m, &cfg[1], &dim[1]) == KVL_OK);
    int32_t ids[5][70];
    const int lens[5] = {3, 40, 1, 70, 17}; /* the 70-token text is cut to the last 64 (truncate left) */
    float *got[5][2], *want[5][2];
    kvl_embed_item items[5];
    for (int i = 0; i < 5; i++) {
        for (int t = 0; t < lens[i]; t++) ids[i][t] = (t * 31 + i * 977 + 3) % V;
        for (int j = 0; j < 2; j++) got[i][j] = malloc(dim[j] * sizeof(float)), want[i][j] = malloc(dim[j] * sizeof(float));
        items[i] = (kvl_embed_item){.ids = ids[i], .n = lens[i], .out = got[i]};
    }
    int failed = 0;
    CHECK_MSG(kvl_embed_many(c, cfg, 2, items, 5, KVL_TRUNCATE_LEFT, &failed) == KVL_OK && failed == -1, "%s",
              kvl_last_error());
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        CHECK(kvl_embed_ids(c, cfg, 2, ids[i], lens[i], KVL_TRUNCATE_LEFT, NULL, 0, want[i]) == KVL_OK);
        for (int j = 0; j < 2; j++) {
            double e = fx_rel_err(got[i][j], want[i][j], dim[j]);
            if (e > worst) worst = e;
            CHECK_MSG(e <= 1e-5, "%s: text %d config %d: %.3g", what, i, j, e);
        }
    }
    printf("%s: 5 texts embedded in one batch vs one at a time: worst relative error %.3g\n", what, worst);
    items[3].n = 70;
    CHECK(kvl_embed_many(c, cfg, 2, items, 5, KVL_TRUNCATE_NONE, &failed) == KVL_ERR_RANGE && failed == 3);
    ids[2][0] = V;
    CHECK(kvl_embed_many(c, cfg, 2, items, 5, KVL_TRUNCATE_LEFT, &failed) == KVL_ERR_ARG && failed == 2);
    CHECK(kvl_embed_many(c, cfg, 2, items, 6, KVL_TRUNCATE_LEFT, &failed) == KVL_ERR_ARG); /* 6 > 5 sequences */
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 2; j++) free(got[i][j]), free(want[i][j]);
    kvl_ctx_free(c);
}

int main(void) {
    const struct {
        int type;
        const char *name;
    } types[] = {{KVL_TYPE_F32, "f32"}, {KVL_TYPE_BF16, "bf16"}, {KVL_TYPE_Q8_0, "q8_0"}};
    for (int ti = 0; ti < 3; ti++) {
        kvl_model *m = NULL;
        if (kvl_model_random("tiny", types[ti].type, 11, &m) != KVL_OK) {
            fprintf(stderr, "%s\n", kvl_last_error());
            return 1;
        }
        const kvl_hparams *hp = kvl_model_hparams(m);
        const int V = hp->n_vocab, lens[NSEQ] = {19, 5, 9, 19};
        ref_seq ref[NSEQ];
        for (int q = 0; q < NSEQ; q++) {
            ref[q].n_prompt = lens[q];
            for (int t = 0; t < lens[q]; t++) ref[q].tok[t] = (t * 7919 + 131 * q + 13) % V;
            if (q == 3) /* shares sequence 0's prompt up to its last 3 tokens */
                for (int t = 0; t < lens[q] - 3; t++) ref[q].tok[t] = ref[0].tok[t];
            ref[q].logits = malloc(sizeof(float) * (STEPS + 1) * V);
            ref[q].k_last = malloc(sizeof(float) * hp->n_head_kv * (MAXP + STEPS) * hp->head_dim);
            run_alone(m, &ref[q], 2);
        }
        mixed_batches(m, ref, 1e-5, types[ti].name);
        if (ti == 0) two_threads(m, ref);
        embed_many(m, types[ti].name);
        for (int q = 0; q < NSEQ; q++) free(ref[q].logits), free(ref[q].k_last);
        kvl_model_free(m);
    }
    return kvl_test_result("batch");
}
