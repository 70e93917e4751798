/* Traces for the thinking probe (kvlens label --traces, probe train --trace-windows) on the shipped model
 * (models/kvlens-think-2-q8_0.gguf; skipped, 77, without it):
 *   - the windows replayed from a trace's token ids (kvl_think_trace_windows: one prefill, the window moved as the
 *     controller moves it) equal the vectors the two-step controller itself scores while it generates that trace,
 *     at every check, in slow and in fast mode (the maximum absolute and relative differences are printed);
 *   - kvl_label_answer_at against a brute-force search over token prefixes for the text that states the answer;
 *   - the strict labels parser with trace fields: a round trip, and each kind of corruption refused by name. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "test_util.h"
#include "think/controller.h"
#include "think/features.h"
#include "think/labels.h"

/* The controller's scorer: records every vector it is given (and when), returns a fixed score that never switches. */
typedef struct {
    float score;
    int dim, n, cap;
    int *at;
    float *x;
} recorder;

static float record(void *user, const float *x, int dim, int n_generated) {
    recorder *r = user;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->at = realloc(r->at, r->cap * sizeof *r->at);
        r->x = realloc(r->x, (size_t)r->cap * dim * sizeof *r->x);
    }
    r->dim = dim;
    r->at[r->n] = n_generated;
    memcpy(r->x + (size_t)r->n++ * dim, x, dim * sizeof *x);
    return r->score;
}

static kvl_ctx *new_ctx(kvl_model *m) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = 1024;
    p.n_threads = 1;
    kvl_ctx *c = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
    return c;
}

/* Largest absolute and relative (to the largest |b|) difference of n vectors of dim. */
static void diffs(const float *a, const float *b, int n, int dim, double *wa, double *wr) {
    for (int j = 0; j < n; j++) {
        double num = 0, den = 0;
        for (int i = 0; i < dim; i++) {
            double d = fabs((double)a[(size_t)j * dim + i] - b[(size_t)j * dim + i]);
            if (d > num) num = d;
            if (fabs(b[(size_t)j * dim + i]) > den) den = fabs(b[(size_t)j * dim + i]);
        }
        if (num > *wa) *wa = num;
        if (num / (den > 0 ? den : 1) > *wr) *wr = num / (den > 0 ? den : 1);
    }
}

/* Generate with the two-step controller forced to stay in one mode, then replay the trace's windows. */
static void check_replay(kvl_model *m, const kvl_tokenizer *t, const char *question, bool slow, const kvl_repr_config *cfg,
                         double *worst_abs, double *worst_rel, int *n_cmp) {
    kvl_think_prompt pr;
    kvl_chat_msg msg = {"user", question};
    CHECK(kvl_think_prompt_build(t, &msg, 1, NULL, &pr) == KVL_OK);
    kvl_ctx *c = new_ctx(m), *c2 = new_ctx(m);
    kvl_sampler_params sp = kvl_sampler_default_params();
    kvl_sampler *smp = NULL;
    CHECK(kvl_sampler_new(&sp, &smp) == KVL_OK);
    kvl_think_params p = kvl_think_default_params();
    p.mode = KVL_ADAPT_TWO_STEP;
    p.max_tokens = 300;
    recorder rec = {.score = slow ? 100.0f : 0.0f}; /* slow: never below 30; fast: never above 70 */
    kvl_think_result r;
    kvl_status s = kvl_think_generate_with(c, smp, &pr, &p, cfg, record, &rec, &r);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    CHECK(r.initial_slow == slow && r.switch_at == -1 && rec.n >= 2 && rec.at[0] == 0);
    /* the checks: after each of tokens 1 .. (the close tag, the end, or the last evaluated token) */
    int *ends = malloc(rec.n * sizeof *ends), n_ends = 0;
    for (int i = 1; i < rec.n; i++) {
        CHECK(rec.at[i] == i);
        ends[n_ends++] = rec.at[i];
    }
    float *x = malloc((size_t)n_ends * rec.dim * sizeof *x);
    s = kvl_think_trace_windows(c2, cfg, &pr, slow, r.tokens, r.n_tokens, ends, n_ends, true, x);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    double wa = 0, wr = 0;
    diffs(x, rec.x + rec.dim, n_ends, rec.dim, &wa, &wr);
    *n_cmp += n_ends;
    printf("%s trace of %d tokens: %d windows, max |replay - controller| %.3g (relative %.3g)", slow ? "slow" : "fast",
           r.n_tokens, n_ends, wa, wr);
    if (wa > *worst_abs) *worst_abs = wa;
    if (wr > *worst_rel) *worst_rel = wr;
    /* one batched prefill instead: the same windows up to the rounding of batched products */
    float *xb = malloc((size_t)n_ends * rec.dim * sizeof *xb);
    CHECK(kvl_think_trace_windows(c2, cfg, &pr, slow, r.tokens, r.n_tokens, ends, n_ends, false, xb) == KVL_OK);
    double ba = 0, br = 0;
    diffs(xb, rec.x + rec.dim, n_ends, rec.dim, &ba, &br);
    printf("; one batched prefill: %.3g (relative %.3g)\n", ba, br);
    CHECK_MSG(br < 1e-2, "batched replay: relative difference %g", br);
    free(xb);
    /* a window set ending at the last check, read alone, is the same vector: windows do not depend on each other */
    float *one = malloc(rec.dim * sizeof *one);
    CHECK(kvl_think_trace_windows(c2, cfg, &pr, slow, r.tokens, r.n_tokens, ends + n_ends - 1, 1, true, one) == KVL_OK);
    CHECK(!memcmp(one, x + (size_t)(n_ends - 1) * rec.dim, rec.dim * sizeof *one));
    /* bad arguments */
    int back[2] = {3, 2}, past = r.n_tokens + 1;
    CHECK(kvl_think_trace_windows(c2, cfg, &pr, slow, r.tokens, r.n_tokens, back, 2, true, one) == KVL_ERR_ARG);
    CHECK(kvl_think_trace_windows(c2, cfg, &pr, slow, r.tokens, r.n_tokens, &past, 1, true, one) == KVL_ERR_ARG);
    free(one), free(x), free(ends), free(rec.at), free(rec.x);
    kvl_think_result_free(&r);
    kvl_sampler_free(smp);
    kvl_ctx_free(c), kvl_ctx_free(c2);
    kvl_think_prompt_free(&pr);
}

static void test_replay(kvl_model *m, const kvl_tokenizer *t) {
    static const char *const Q[2] = {
        "Ruby has a collection of 39 toy cars. After that, she uses 17 toy cars for a project. Then she gives 5 toy "
        "cars to Rosa. How many toy cars does Ruby have?\nEnd your reply with \"The answer is\" and the number.",
        "Lily has a collection of 12 oranges. How many more oranges does Lily need to have 17 oranges?\nEnd your reply "
        "with \"The answer is\" and the number."};
    double wa = 0, wr = 0;
    int n = 0;
    kvl_repr_config cfg = kvl_repr_classifier_config(32, 4); /* the probe's default features */
    for (int q = 0; q < 2; q++)
        for (int slow = 0; slow < 2; slow++) check_replay(m, t, Q[q], slow, &cfg, &wa, &wr, &n);
    cfg = kvl_repr_classifier_config(8, 2); /* a window shorter than the mode's start + the first tokens */
    check_replay(m, t, Q[0], true, &cfg, &wa, &wr, &n);
    printf("replayed windows vs the controller's: %d compared, max abs diff %.3g, max relative %.3g\n", n, wa, wr);
    CHECK_MSG(wa == 0, "replayed windows differ from the controller's: %g (relative %g)", wa, wr);
}

/* The fewest tokens of ids whose decoded text contains `want` (brute force over every prefix); -1 if none. */
static int brute_force(const kvl_tokenizer *t, const int32_t *ids, int n, const char *want) {
    for (int k = 1; k <= n; k++) {
        char *s = NULL;
        size_t l = 0;
        CHECK(kvl_detokenize(t, ids, k, &s, &l) == KVL_OK);
        int hit = s && strstr(s, want) != NULL;
        free(s);
        if (hit) return k;
    }
    return -1;
}

static void test_answer_at(const kvl_tokenizer *t, int32_t close_id) {
    /* text inside the thinking, reference, the text that first states it (NULL: never) */
    static const struct {
        const char *text, *ref, *want;
        int closed;
    } C[] = {
        {"Starts with 98.\nGets 3: 95 + 3 = 98.\nAgain: 95 + 3 = 98.\n", "98", "= 98.\n", 1},
        {"x = 980 and y = 98.5 then z = 198, w = 98\n", "98", "w = 98\n", 1},
        {"a = 1,234 so", "1234", "= 1,234 ", 1},
        {"So the answer is 42, done", "42", "answer is 42, ", 1}, /* ", d" would be a thousands group */
        {"The Answer Is -7.\nok", "-7", "Is -7.\n", 1},
        {"p = 5.25 q", "5.25", "= 5.25 ", 1},
        {"total = 12", "12", "= 12", 1},      /* the thinking ends right after the number: that ends it */
        {"total = 12", "12", NULL, 0},        /* cut off (no close tag): 12 might go on (120): not stated */
        {"n = 3.5.1 = 3", "3.5", NULL, 1},    /* part of a longer number; the later "= 3" is another value */
        {"12 apples, 5 + 7 = 13", "12", NULL, 1}, /* the reference as an input number, not a result */
    };
    for (size_t i = 0; i < sizeof C / sizeof *C; i++) {
        int32_t *ids = NULL;
        int n = 0;
        CHECK(kvl_tokenize(t, C[i].text, strlen(C[i].text), false, &ids, &n) == KVL_OK);
        ids = realloc(ids, (n + 3) * sizeof *ids);
        int n_all = n;
        if (C[i].closed) ids[n_all++] = close_id, ids[n_all++] = ids[0]; /* tokens after the close do not count */
        int at = -2;
        CHECK(kvl_label_answer_at(t, ids, n_all, close_id, C[i].ref, &at) == KVL_OK);
        int want = C[i].want ? brute_force(t, ids, n, C[i].want) : -1;
        CHECK_MSG(at == want && (!C[i].want || want > 0), "'%s' ref %s: at %d, want %d", C[i].text, C[i].ref, at, want);
        free(ids);
    }
}

static void test_parse(void) {
    kvl_label_row r;
    const char *good = "{\"question\":\"q\",\"label\":75,\"fast_correct\":false,\"fast_tokens\":3,\"slow_correct\":true,"
                       "\"slow_tokens\":4,\"short_bound\":16,\"fast_ids\":[1,2,3],\"slow_ids\":[4,5,6,7],\"slow_answer_at\":2}";
    CHECK_MSG(kvl_label_parse(good, &r) == KVL_OK, "%s", kvl_last_error());
    CHECK(r.has_traces && r.n_fast_ids == 3 && r.n_slow_ids == 4 && r.slow_ids[3] == 7 && r.slow_answer_at == 2);
    char *line = kvl_label_format(&r);
    kvl_label_row r2;
    CHECK(line && kvl_label_parse(line, &r2) == KVL_OK && r2.has_traces && r2.n_slow_ids == 4 &&
          !memcmp(r2.fast_ids, r.fast_ids, 3 * sizeof *r.fast_ids) && r2.slow_answer_at == 2);
    free(line);
    kvl_label_row_free(&r2);
    kvl_label_row_free(&r);
    CHECK(kvl_label_parse("{\"question\":\"q\",\"label\":0}", &r) == KVL_OK && !r.has_traces && r.slow_answer_at == -1);
    kvl_label_row_free(&r);
    static const struct {
        const char *line, *msg;
    } B[] = {
        {"{\"question\":\"q\",\"label\":0,\"fast_ids\":[1],\"slow_ids\":[2]}", "missing slow_answer_at"},
        {"{\"question\":\"q\",\"label\":0,\"slow_ids\":[2],\"slow_answer_at\":-1}", "missing fast_ids"},
        {"{\"question\":\"q\",\"label\":0,\"fast_ids\":[1,-2],\"slow_ids\":[2],\"slow_answer_at\":-1}", "element 1"},
        {"{\"question\":\"q\",\"label\":0,\"fast_ids\":[1,2.5],\"slow_ids\":[2],\"slow_answer_at\":-1}", "element 1"},
        {"{\"question\":\"q\",\"label\":0,\"fast_ids\":\"1 2\",\"slow_ids\":[2],\"slow_answer_at\":-1}", "array"},
        {"{\"question\":\"q\",\"label\":0,\"fast_ids\":[1],\"slow_ids\":[2],\"slow_answer_at\":2}", "past the 1 slow"},
        {"{\"question\":\"q\",\"label\":0,\"fast_ids\":[1],\"slow_ids\":[2],\"slow_answer_at\":-3}", "slow_answer_at"},
        {"{\"question\":\"q\",\"label\":0,\"fast_tokens\":2,\"fast_ids\":[1],\"slow_ids\":[2],\"slow_answer_at\":-1}",
         "fast_ids holds 1 tokens but fast_tokens is 2"},
        {"{\"question\":\"q\",\"label\":0,\"slow_tokens\":2,\"fast_ids\":[1],\"slow_ids\":[2],\"slow_answer_at\":-1}",
         "slow_ids holds 1 tokens but slow_tokens is 2"},
    };
    for (size_t i = 0; i < sizeof B / sizeof *B; i++) {
        kvl_status s = kvl_label_parse(B[i].line, &r);
        CHECK_MSG(s == KVL_ERR_FORMAT && strstr(kvl_last_error(), B[i].msg), "%s: %s", B[i].line, kvl_last_error());
        kvl_label_row_free(&r);
    }
}

int main(void) {
    test_parse();
    char path[4096];
    snprintf(path, sizeof path, "%s/models/kvlens-think-2-q8_0.gguf", kvl_test_env("KVL_SRC", "."));
    FILE *f = fopen(path, "rb");
    if (!f) SKIP("no %s", path);
    fclose(f);
    kvl_model *m = NULL;
    const kvl_tokenizer *t = NULL;
    CHECK(kvl_model_load(path, &m) == KVL_OK);
    CHECK(m && kvl_model_tokenizer(m, &t) == KVL_OK);
    if (!t) return kvl_test_result("test_traces");
    kvl_think_prompt pr;
    kvl_chat_msg msg = {"user", "hi"};
    CHECK(kvl_think_prompt_build(t, &msg, 1, NULL, &pr) == KVL_OK);
    test_answer_at(t, pr.close[0]);
    kvl_think_prompt_free(&pr);
    test_replay(m, t);
    kvl_model_free(m);
    return kvl_test_result("test_traces");
}
