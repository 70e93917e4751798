/* Adaptive thinking on the Qwen3 fixture model: the incremental sliding-window features equal a from-scratch
 * kvl_repr_compute at every decoding step (several configurations, f32 and f16 caches, jumps and rewinds); the
 * controllers' mechanics under forced scores (one initial decision, exactly one switch that appends exactly the
 * close or open tokens to the live cache, checks every K tokens, nothing for the fixed modes); the prompt split and
 * the template's tags from a real tokenizer (Qwen3's, from ../shared, skipped without it); probe/model checks. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvlens.h"
#include "model/model.h"
#include "test_util.h"
#include "think/controller.h"

static const char *src_dir;

/* Convert an HF directory and load it; with tok, also open the file's tokenizer on its own (the fixture's 384-token
 * model refuses Qwen3's 151k-token tokenizer as its own). */
static kvl_model *convert_load(const char *hf, const char *tag, unsigned flags, kvl_tokenizer **tok) {
    char gg[1024];
    snprintf(gg, sizeof gg, "%s/kvl_think_%d_%s.gguf", kvl_test_env("TMPDIR", "/tmp"), (int)getpid(), tag);
    kvl_convert_params cp = kvl_convert_default_params();
    cp.type = KVL_TYPE_F32;
    cp.flags = flags;
    kvl_status s = kvl_convert_hf(hf, gg, &cp);
    CHECK_MSG(s == KVL_OK, "convert %s: %s", hf, kvl_last_error());
    if (s) return NULL;
    kvl_model *m = NULL;
    s = kvl_model_load(gg, &m);
    if (tok && kvl_tokenizer_load(gg, tok)) *tok = NULL;
    unlink(gg);
    CHECK_MSG(s == KVL_OK, "load %s: %s", hf, kvl_last_error());
    return s ? NULL : m;
}

static kvl_model *fixture(const char *name) {
    char hf[1024];
    snprintf(hf, sizeof hf, "%s/tests/fixtures/%s/hf", src_dir, name);
    return convert_load(hf, name, KVL_CONVERT_NO_VOCAB, NULL);
}

static kvl_ctx *new_ctx(kvl_model *m, int n_ctx, int f16) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    p.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    kvl_ctx *c = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
    return c;
}

static double max_rel_diff(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / (den > 0 ? den : 1);
}

/* Decode token by token; after each step the window (advanced by one) must equal kvl_repr_compute. */
static void check_window(kvl_model *m, const kvl_repr_config *cfg, int f16, const char *what) {
    kvl_ctx *c = new_ctx(m, 128, f16);
    int dim = 0;
    CHECK(kvl_repr_dim(m, cfg, &dim) == KVL_OK);
    float *a = malloc(dim * sizeof *a), *b = malloc(dim * sizeof *b);
    const int32_t prompt[5] = {1, 17, 42, 99, 5};
    CHECK(kvl_eval(c, prompt, 5, KVL_LOGITS_LAST) == KVL_OK);
    kvl_feat_window *w = NULL;
    CHECK(kvl_feat_window_new(kvl_seq_view(c, 0), cfg, 0, &w) == KVL_OK);
    CHECK(kvl_feat_window_get(w, a) == KVL_ERR_ARG); /* empty */
    CHECK(kvl_feat_window_advance(w, kvl_seq_view(c, 0), 5) == KVL_OK);
    double worst = 0;
    int steps = 0;
    for (int step = 0; step < 40; step++) {
        CHECK(kvl_feat_window_get(w, a) == KVL_OK);
        CHECK(kvl_repr_compute(kvl_seq_view(c, 0), cfg, 0, kvl_ctx_n_pos(c), b) == KVL_OK);
        double r = max_rel_diff(a, b, dim);
        if (r > worst) worst = r;
        steps++;
        int32_t t = (int32_t)((step * 37 + 11) % 384);
        CHECK(kvl_eval(c, &t, 1, KVL_LOGITS_LAST) == KVL_OK);
        CHECK(kvl_feat_window_advance(w, kvl_seq_view(c, 0), kvl_ctx_n_pos(c)) == KVL_OK);
    }
    CHECK_MSG(worst < 1e-5, "%s: incremental vs from scratch: relative difference %g over %d steps", what, worst, steps);
    CHECK(kvl_feat_window_end(w) == 45);
    /* a jump of several positions, a jump past the window, a rewind after truncation */
    const int32_t more[20] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22};
    int ends[3] = {48, 65, 30};
    CHECK(kvl_eval(c, more, 20, KVL_LOGITS_NONE) == KVL_OK);
    for (int i = 0; i < 3; i++) {
        if (i == 2) CHECK(kvl_ctx_truncate(c, ends[i]) == KVL_OK);
        CHECK_MSG(kvl_feat_window_advance(w, kvl_seq_view(c, 0), ends[i]) == KVL_OK, "%d: %s", ends[i], kvl_last_error());
        CHECK(kvl_feat_window_get(w, a) == KVL_OK);
        CHECK(kvl_repr_compute(kvl_seq_view(c, 0), cfg, 0, ends[i], b) == KVL_OK);
        CHECK_MSG(max_rel_diff(a, b, dim) < 1e-5, "%s: after moving to %d: %g", what, ends[i], max_rel_diff(a, b, dim));
    }
    CHECK(kvl_feat_window_advance(w, kvl_seq_view(c, 0), 31) == KVL_ERR_ARG); /* past the filled positions */
    CHECK(kvl_feat_window_advance(w, kvl_seq_view(c, 0), 0) == KVL_ERR_ARG);
    kvl_feat_window_free(w);
    free(a), free(b);
    kvl_ctx_free(c);
}

static void test_windows(kvl_model *m) {
    kvl_repr_config cfg = kvl_repr_classifier_config(8, 2);
    check_window(m, &cfg, 0, "classifier W=8 last:2");
    check_window(m, &cfg, 1, "classifier W=8 last:2, f16 cache");
    cfg = kvl_repr_classifier_config(3, 3);
    check_window(m, &cfg, 0, "classifier W=3 last:3");
    cfg = kvl_repr_classifier_config(0, 1);
    check_window(m, &cfg, 0, "no window");
    kvl_repr_config e = kvl_repr_embedding_config();
    e.layers.last_n = 0;
    e.layers.n_layers = 2;
    e.layers.layers[0] = 2, e.layers.layers[1] = 0;
    e.window = 6;
    e.kv_part = KVL_KV_K;
    e.layer_agg = KVL_LAYERS_FLATTEN;
    check_window(m, &e, 0, "mean over positions, K only, heads mean, layers 2,0 flatten, L2");
    e.kv_part = KVL_KV_V;
    e.head_agg = KVL_HEADS_FLATTEN;
    e.layer_agg = KVL_LAYERS_LAST;
    check_window(m, &e, 0, "V only, last layer");
    kvl_ctx *c = new_ctx(m, 16, 0);
    kvl_feat_window *w = NULL;
    e.pos_agg = KVL_POS_LAST;
    CHECK(kvl_feat_window_new(kvl_seq_view(c, 0), &e, 0, &w) == KVL_ERR_UNSUPPORTED && !w);
    e.pos_agg = KVL_POS_SUM;
    e.source = KVL_SOURCE_HIDDEN;
    CHECK(kvl_feat_window_new(kvl_seq_view(c, 0), &e, 0, &w) == KVL_ERR_UNSUPPORTED && !w);
    kvl_ctx_free(c);
}

/* A forced score trajectory: `before` until `at` tokens have been generated, then `after`. */
typedef struct {
    float initial, before, after;
    int at, calls, bad_dim;
} forced;

static float forced_score(void *user, const float *x, int dim, int n) {
    forced *f = user;
    (void)x;
    f->calls++;
    if (dim != 2 * 2 * 48) f->bad_dim++;
    return n == 0 ? f->initial : n < f->at ? f->before : f->after;
}

static void run_forced(kvl_model *m, const kvl_think_prompt *pr, kvl_adapt_mode mode, int every, forced *f,
                       kvl_think_result *r, int max_tokens) {
    kvl_ctx *c = new_ctx(m, 256, 0);
    kvl_sampler_params sp = kvl_sampler_default_params();
    kvl_sampler *smp = NULL;
    CHECK(kvl_sampler_new(&sp, &smp) == KVL_OK);
    kvl_think_params p = kvl_think_default_params();
    p.mode = mode;
    p.every = every;
    p.max_tokens = max_tokens;
    p.ignore_eos = true;
    kvl_repr_config feat = kvl_repr_classifier_config(8, 2);
    kvl_status s = kvl_think_generate_with(c, smp, pr, &p, &feat, forced_score, f, r);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    CHECK(kvl_ctx_n_pos(c) == r->n_prompt + r->n_tokens - 1); /* the last sampled token is not evaluated */
    /* the live cache equals one prefill of prompt + start + every token: no re-prefill, nothing left out */
    int n = kvl_ctx_n_pos(c);
    int32_t *all = malloc(n * sizeof *all);
    int k = 0;
    memcpy(all, pr->prefix, pr->n_prefix * sizeof *all), k += pr->n_prefix;
    const int32_t *st = r->initial_slow ? pr->slow : pr->fast;
    int ns = r->initial_slow ? pr->n_slow : pr->n_fast;
    memcpy(all + k, st, ns * sizeof *all), k += ns;
    memcpy(all + k, r->tokens, (n - k) * sizeof *all);
    kvl_ctx *c2 = new_ctx(m, 256, 0);
    CHECK(kvl_eval(c2, all, n, KVL_LOGITS_NONE) == KVL_OK);
    float *k1 = malloc(2 * 48 * n * sizeof *k1), *k2 = malloc(2 * 48 * n * sizeof *k2);
    CHECK(kvl_cache_v(c, 2, 0, n, k1) == KVL_OK && kvl_cache_v(c2, 2, 0, n, k2) == KVL_OK);
    CHECK_MSG(max_rel_diff(k1, k2, 2 * 48 * n) < 1e-4, "cache differs from a fresh prefill: %g", max_rel_diff(k1, k2, 2 * 48 * n));
    free(k1), free(k2), free(all);
    kvl_ctx_free(c2);
    kvl_sampler_free(smp);
    kvl_ctx_free(c);
}

static int count_seq(const int32_t *a, int n, const int32_t *seq, int ns) {
    int c = 0;
    for (int i = 0; i + ns <= n; i++) c += !memcmp(a + i, seq, ns * sizeof *seq);
    return c;
}

static int contains(const int32_t *a, int n, int32_t v) {
    for (int i = 0; i < n; i++)
        if (a[i] == v) return 1;
    return 0;
}

static void test_controller(kvl_model *m) {
    int32_t prefix[5] = {1, 17, 42, 99, 5}, fast[3] = {7, 8, 9}, slow[1] = {10}, open[2], close[3];
    kvl_think_prompt pr = {prefix, fast, slow, open, close, 5, 3, 1, 2, 3};
    /* Greedy decoding is deterministic: the fixed runs show which tokens the model emits, and the tags are chosen
     * among ids it does not emit (a model-emitted close token would end the controller's say). */
    kvl_think_result rs, rf;
    forced f0 = {0};
    open[0] = open[1] = close[0] = close[1] = close[2] = 0;
    run_forced(m, &pr, KVL_ADAPT_SLOW, 1, &f0, &rs, 40);
    run_forced(m, &pr, KVL_ADAPT_FAST, 1, &f0, &rf, 40);
    CHECK(f0.calls == 0 && rs.n_scores == 0 && rs.switch_at < 0 && rs.n_inserted == 0 && isnan(rs.initial_score));
    CHECK(rs.initial_slow && !rf.initial_slow && rs.n_tokens == 40 && rs.n_sampled == 40 && rs.n_prompt == 6);
    int32_t free_ids[5], nf = 0;
    for (int32_t id = 300; id < 384 && nf < 5; id++)
        if (!contains(rs.tokens, rs.n_tokens, id) && !contains(rf.tokens, rf.n_tokens, id)) free_ids[nf++] = id;
    CHECK(nf == 5);
    open[0] = free_ids[0], open[1] = free_ids[1];
    close[0] = free_ids[2], close[1] = free_ids[3], close[2] = free_ids[4];

    /* slow -> fast: initial 80 (slow), 40 until 5 tokens (not below 50 - 20), then 10: switch exactly once */
    kvl_think_result r;
    forced f = {80, 40, 10, 5, 0, 0};
    run_forced(m, &pr, KVL_ADAPT_TWO_STEP, 1, &f, &r, 40);
    CHECK(r.initial_slow && !r.final_slow && r.initial_score == 80);
    CHECK_MSG(r.switch_at == 5 && r.switch_dir == -1, "switch at %d dir %d", r.switch_at, r.switch_dir);
    CHECK(r.n_inserted == 3 && r.n_tokens == 40 && r.n_sampled == 37);
    CHECK(!memcmp(r.tokens + 5, close, sizeof close) && count_seq(r.tokens, r.n_tokens, close, 3) == 1);
    CHECK(!memcmp(r.tokens, rs.tokens, 5 * sizeof *r.tokens)); /* before the switch: the slow run's tokens */
    CHECK(!contains(r.tokens, r.n_tokens, open[0]));
    CHECK(r.n_scores == 6 && f.calls == 6 && f.bad_dim == 0); /* 0 (prompt), 1..5; none after the switch */
    for (int i = 0; i < r.n_scores; i++) CHECK(r.score_at[i] == i);
    CHECK(r.scores[5] == 10 && r.scores[4] == 40);
    kvl_think_result_free(&r);

    /* fast -> slow after 3 tokens, checks every 1: the open tokens are appended */
    forced g = {20, 60, 95, 3, 0, 0};
    run_forced(m, &pr, KVL_ADAPT_TWO_STEP, 1, &g, &r, 30);
    CHECK(!r.initial_slow && r.final_slow && r.switch_at == 3 && r.switch_dir == 1 && r.n_inserted == 2);
    CHECK(!memcmp(r.tokens + 3, open, sizeof open) && count_seq(r.tokens, r.n_tokens, open, 2) == 1);
    CHECK(!contains(r.tokens, r.n_tokens, close[0]));
    CHECK(!memcmp(r.tokens, rf.tokens, 3 * sizeof *r.tokens));
    kvl_think_result_free(&r);

    /* every 4: scores at 0, 4, 8; the switch waits for the check at 8 although the score is low from 6 */
    forced h = {70, 45, 5, 6, 0, 0};
    run_forced(m, &pr, KVL_ADAPT_TWO_STEP, 4, &h, &r, 30);
    CHECK(r.n_scores == 3 && r.score_at[0] == 0 && r.score_at[1] == 4 && r.score_at[2] == 8);
    CHECK(r.switch_at == 8 && r.n_inserted == 3);
    kvl_think_result_free(&r);

    /* inside the dead band: no switch, a score after every token */
    forced k = {60, 35, 65, 10, 0, 0};
    run_forced(m, &pr, KVL_ADAPT_TWO_STEP, 1, &k, &r, 20);
    CHECK(r.switch_at == -1 && r.switch_dir == 0 && r.n_inserted == 0 && r.n_scores == 20 && r.final_slow);
    kvl_think_result_free(&r);

    /* one-step: one score, the decision, no switch however the score would move */
    forced o = {49.5f, 99, 99, 0, 0, 0};
    run_forced(m, &pr, KVL_ADAPT_ONE_STEP, 1, &o, &r, 20);
    CHECK(o.calls == 1 && !r.initial_slow && !r.final_slow && r.switch_at == -1 && r.n_scores == 0);
    CHECK(!memcmp(r.tokens, rf.tokens, 20 * sizeof *r.tokens));
    kvl_think_result_free(&r);
    o.initial = 50, o.calls = 0;
    run_forced(m, &pr, KVL_ADAPT_ONE_STEP, 1, &o, &r, 20);
    CHECK(r.initial_slow && !memcmp(r.tokens, rs.tokens, 20 * sizeof *r.tokens));
    kvl_think_result_free(&r);
    kvl_think_result_free(&rs);
    kvl_think_result_free(&rf);
}

/* The public path: a probe (trained on a few random feature rows of this model) must match the model. */
static void test_probe_checks(kvl_model *m, kvl_model *other) {
    kvl_repr_config feat = kvl_repr_classifier_config(8, 2);
    int dim = 0;
    CHECK(kvl_repr_dim(m, &feat, &dim) == KVL_OK && dim == 192);
    float *X = malloc(20 * dim * sizeof *X), y[20];
    for (int i = 0; i < 20 * dim; i++) X[i] = (float)((i * 7919) % 101) / 50.0f;
    for (int i = 0; i < 20; i++) y[i] = (float)(i % 4 == 0 ? 0 : i % 4 == 1 ? 25 : i % 4 == 2 ? 75 : 100);
    kvl_probe_train_params tp = kvl_probe_train_default_params();
    tp.hidden = 8;
    tp.epochs = 3;
    kvl_probe *p = NULL, *q = NULL;
    CHECK(kvl_probe_train(m, &feat, X, y, NULL, 20, dim, &tp, &p, NULL) == KVL_OK);
    CHECK(kvl_probe_train(m, &feat, X, y, NULL, 20, dim - 1, &tp, &q, NULL) == KVL_ERR_ARG && !q);
    free(X);
    if (!p) return;
    CHECK(kvl_probe_check_model(p, m) == KVL_OK);
    if (other) {
        kvl_status s = kvl_probe_check_model(p, other);
        CHECK_MSG(s == KVL_ERR_ARG && strstr(kvl_last_error(), "trained for"), "%s", kvl_last_error());
    }
    /* the same shape with other norm weights: another model */
    const kvl_hparams *hp = kvl_model_hparams(m);
    float *norm = malloc(hp->n_embd * sizeof *norm);
    for (int i = 0; i < hp->n_embd; i++) norm[i] = m->output_norm[i] * 1.01f;
    const float *keep = m->output_norm;
    m->output_norm = norm;
    kvl_status s = kvl_probe_check_model(p, m);
    CHECK_MSG(s == KVL_ERR_ARG && strstr(kvl_last_error(), "norm weights differ"), "%s", kvl_last_error());
    m->output_norm = keep;
    free(norm);

    int32_t prefix[3] = {1, 2, 3}, fast[1] = {4}, slow[1] = {5}, open[1] = {6}, close[1] = {7};
    kvl_think_prompt pr = {prefix, fast, slow, open, close, 3, 1, 1, 1, 1};
    kvl_ctx *c = new_ctx(m, 64, 0);
    kvl_sampler_params sp = kvl_sampler_default_params();
    kvl_sampler *smp = NULL;
    CHECK(kvl_sampler_new(&sp, &smp) == KVL_OK);
    kvl_think_params tpar = kvl_think_default_params();
    tpar.mode = KVL_ADAPT_TWO_STEP;
    tpar.max_tokens = 8;
    tpar.ignore_eos = true;
    kvl_think_result r;
    CHECK(kvl_think_generate(c, smp, &pr, &tpar, &r) == KVL_ERR_ARG); /* no probe */
    kvl_think_result_free(&r);
    tpar.probe = p;
    s = kvl_think_generate(c, smp, &pr, &tpar, &r);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    CHECK(r.n_tokens == 8 && r.n_scores >= 1 && !isnan(r.initial_score));
    /* the probe's own score of the prompt's window is the initial score */
    float *x = malloc(dim * sizeof *x);
    kvl_ctx *c2 = new_ctx(m, 64, 0);
    CHECK(kvl_eval(c2, prefix, 3, KVL_LOGITS_NONE) == KVL_OK && kvl_repr_compute(kvl_seq_view(c2, 0), &feat, 0, 3, x) == KVL_OK);
    CHECK_NEAR(kvl_probe_score(p, x), r.initial_score, 1e-4);
    kvl_think_result_free(&r);
    kvl_ctx_free(c2);
    free(x);
    pr.n_close = 0;
    CHECK(kvl_think_generate(c, smp, &pr, &tpar, &r) == KVL_ERR_ARG);
    kvl_think_result_free(&r);
    kvl_sampler_free(smp);
    kvl_ctx_free(c);
    kvl_probe_free(p);
}

static int equal_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && !memcmp(a, b, na * sizeof *a);
}

/* Prefix + start = each rendering's own tokens; the tags are the template's texts tokenized. */
static void check_split(const kvl_tokenizer *t, const kvl_chat_params *cp, const kvl_think_prompt *pr,
                        const kvl_chat_msg *msg, const char *open, const char *close) {
    int32_t *ids = NULL;
    int n = 0;
    char *text = NULL;
    size_t len;
    for (int mode = 0; mode < 2; mode++) {
        kvl_chat_params p = *cp;
        p.think = mode ? KVL_THINK_SLOW : KVL_THINK_FAST;
        CHECK(kvl_chat_render(t, msg, 1, &p, &text, &len) == KVL_OK);
        CHECK(kvl_tokenize(t, text, len, false, &ids, &n) == KVL_OK);
        const int32_t *st = mode ? pr->slow : pr->fast;
        int ns = mode ? pr->n_slow : pr->n_fast;
        CHECK(n == pr->n_prefix + ns && !memcmp(ids, pr->prefix, pr->n_prefix * sizeof *ids) &&
              !memcmp(ids + pr->n_prefix, st, ns * sizeof *ids));
        free(text), free(ids);
    }
    CHECK(kvl_tokenize(t, open, strlen(open), false, &ids, &n) == KVL_OK && equal_ids(ids, n, pr->open, pr->n_open));
    free(ids);
    CHECK(kvl_tokenize(t, close, strlen(close), false, &ids, &n) == KVL_OK && equal_ids(ids, n, pr->close, pr->n_close));
    free(ids);
}

static void test_prompt(void) {
    char dir[1024], path[1200], tokdir[1024];
    snprintf(tokdir, sizeof tokdir, "%s/tokenizers/qwen3", kvl_test_env("KVL_SHARED", "../shared"));
    snprintf(path, sizeof path, "%s/tokenizer.json", tokdir);
    if (access(path, R_OK)) {
        printf("no %s: tokenizer cases skipped\n", path);
        return;
    }
    /* the fixture's weights with Qwen3's tokenizer: texts of digits stay inside its 384-token vocabulary */
    snprintf(dir, sizeof dir, "%s/kvl_think_%d_tok", kvl_test_env("TMPDIR", "/tmp"), (int)getpid());
    mkdir(dir, 0700);
    const char *files[] = {"config.json", "generation_config.json", "model.safetensors"};
    char a[1300], b[1300];
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/tests/fixtures/qwen3/hf/%s", src_dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        CHECK(kvl_test_copy_file(a, b) == 0);
    }
    const char *tfiles[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", tokdir, tfiles[i]);
        snprintf(b, sizeof b, "%s/%s", dir, tfiles[i]);
        CHECK(kvl_test_copy_file(a, b) == 0);
    }
    kvl_tokenizer *t = NULL;
    kvl_model *m = convert_load(dir, "tok", 0, &t);
    for (int i = 0; i < 3; i++) snprintf(b, sizeof b, "%s/%s", dir, files[i]), unlink(b);
    for (int i = 0; i < 2; i++) snprintf(b, sizeof b, "%s/%s", dir, tfiles[i]), unlink(b);
    rmdir(dir);
    if (!m || !t) {
        CHECK(0);
        kvl_model_free(m);
        kvl_tokenizer_free(t);
        return;
    }
    /* Qwen3's own template: the prefix ends with <think>; slow adds "\n", fast "\n\n</think>\n\n" */
    kvl_chat_msg msg = {"user", "What is 12+30?"};
    kvl_chat_params cp = kvl_chat_default_params();
    kvl_think_prompt pr;
    kvl_status s = kvl_think_prompt_build(t, &msg, 1, &cp, &pr);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    if (!s) {
        CHECK(pr.prefix[pr.n_prefix - 1] == kvl_token_lookup(t, "<think>"));
        CHECK(pr.n_slow == 1 && pr.slow[0] == kvl_token_lookup(t, "\n"));
        CHECK(pr.n_fast == 3 && pr.fast[1] == kvl_token_lookup(t, "</think>"));
        CHECK(pr.n_close == 2 && pr.close[0] == kvl_token_lookup(t, "</think>"));
        CHECK(pr.n_open == 2 && pr.open[0] == kvl_token_lookup(t, "<think>"));
        check_split(t, &cp, &pr, &msg, "<think>\n", "</think>\n\n");
        kvl_think_prompt_free(&pr);
    }
    /* a template without thinking: a clear error */
    cp.template_override = "kvlens-chat-format\nuser: U{content}\ngeneration: A\n";
    s = kvl_think_prompt_build(t, &msg, 1, &cp, &pr);
    CHECK_MSG(s == KVL_ERR_UNSUPPORTED && strstr(kvl_last_error(), "hybrid-thinking"), "%s", kvl_last_error());

    /* An explicit format whose tags are digits (inside the fixture's vocabulary): the controller appends exactly
     * the template's close text at a forced switch. */
    cp.template_override = "kvlens-chat-format\nuser: 1{content}2\ngeneration: 3\nthink-open: 4\nthink-close: 56\n";
    msg.content = "9090";
    s = kvl_think_prompt_build(t, &msg, 1, &cp, &pr);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    if (!s) {
        check_split(t, &cp, &pr, &msg, "4", "56");
        CHECK(pr.n_slow == 1 && pr.n_fast == 3); /* slow's tokens begin fast's: the prefix stops before "4" */
        kvl_think_result r;
        forced f = {90, 10, 10, 1, 0, 0};
        run_forced(m, &pr, KVL_ADAPT_TWO_STEP, 1, &f, &r, 12);
        int32_t *ids = NULL;
        int n = 0;
        CHECK(kvl_tokenize(t, "56", 2, false, &ids, &n) == KVL_OK);
        CHECK(r.switch_at == 1 && r.n_inserted == n && !memcmp(r.tokens + 1, ids, n * sizeof *ids));
        free(ids);
        kvl_think_result_free(&r);
        kvl_think_prompt_free(&pr);
    }
    kvl_tokenizer_free(t);
    kvl_model_free(m);
}

int main(void) {
    src_dir = kvl_test_env("KVL_SRC", ".");
    kvl_model *m = fixture("qwen3"), *other = fixture("llama");
    if (!m) return kvl_test_result("test_think");
    test_windows(m);
    test_controller(m);
    test_probe_checks(m, other);
    test_prompt();
    kvl_model_free(m);
    kvl_model_free(other);
    return kvl_test_result("test_think");
}
