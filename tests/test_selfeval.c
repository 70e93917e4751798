/* Self-evaluation: parity of every score (KV-CoE on both axes and three layer selections, hidden-state CoE, MaxProb,
 * PPL, Entropy) and of the trajectories with tools/make_score_fixtures.py (transformers in float64 and an independent
 * numpy implementation; tests/fixtures/<name>/score); scoring while decoding equals teacher forcing; CoE and output
 * scores on hand-computed trajectories and logits, degenerate cases; the metrics on hand-computed cases (ties,
 * all-positive, all-negative, interpolated FPR95) and against brute-force definitions; bootstrap; SVG output. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvlens.h"
#include "fixture_util.h"
#include "test_util.h"
#include "util/npy.h"
#include "util/rng.h"

static const char *src_dir;

static kvl_ctx *new_ctx(kvl_model *m, int n_ctx, int keep_hidden, int f16) {
    kvl_ctx_params p = kvl_ctx_default_params();
    p.n_ctx = n_ctx;
    p.keep_hidden = keep_hidden;
    p.n_threads = 1;
    p.cache_type = f16 ? KVL_CACHE_F16 : KVL_CACHE_F32;
    kvl_ctx *c = NULL;
    CHECK(kvl_ctx_new(m, &p, &c) == KVL_OK);
    return c;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* |a - b| relative to `scale` (the size of the quantities the score is made of); NaN counts as infinite. */
static double rel(double a, double b, double scale) {
    double d = fabs(a - b);
    if (d != d) return INFINITY;
    return scale > 0 ? d / scale : d;
}

static double worst_all = 0, worst_f16 = 0;

/* One CoE against its reference object {mag, ang, r, c, warn}. R = mag - ang is compared relative to the larger of
 * |R|, mag and ang: a difference of two nearly equal numbers cannot be known better than its terms. */
static void check_coe(const char *what, const kvl_coe *got, const cJSON *ref, double tol) {
    const double mag = num(ref, "mag"), ang = num(ref, "ang"), r = num(ref, "r"), c = num(ref, "c");
    const double e[4] = {rel(got->mag, mag, fabs(mag)), rel(got->ang, ang, fabs(ang)),
                         rel(got->r, r, fmax(fabs(r), fmax(fabs(mag), fabs(ang)))), rel(got->c, c, fabs(c))};
    const char *nm[4] = {"mag", "ang", "r", "c"};
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(e[i] <= tol, "%s %s: rel err %.3g", what, nm[i], e[i]);
        if (tol <= 1e-4 && e[i] > worst_all) worst_all = e[i]; /* the f32 cache's worst */
        if (tol > 1e-4 && e[i] > worst_f16) worst_f16 = e[i];
    }
    CHECK_MSG(got->warn == (unsigned)num(ref, "warn"), "%s: warn %u, reference %g", what, got->warn, num(ref, "warn"));
}

static void check_out(const char *what, const kvl_output_scores *o, const cJSON *ref, double tol) {
    const char *k[5] = {"maxprob", "ppl", "ppl_score", "entropy", "entropy_score"};
    const double v[5] = {o->maxprob, o->ppl, o->ppl_score, o->entropy, o->entropy_score};
    for (int i = 0; i < 5; i++) {
        double r = num(ref, k[i]), e = rel(v[i], r, fabs(r));
        CHECK_MSG(e <= tol, "%s %s: %.9g vs %.9g (rel err %.3g)", what, k[i], v[i], r, e);
        if (e > worst_all) worst_all = e;
    }
}

/* max |a - b| / max |b| of a trajectory against a float32 reference. */
static double traj_err(const double *a, const kvl_npy *ref, int n, int dim) {
    if (ref->count != (int64_t)n * dim) return INFINITY;
    const float *b = ref->data;
    double e = 0, m = 0;
    for (int64_t i = 0; i < ref->count; i++) {
        double d = fabs(a[i] - b[i]);
        e = d > e || d != d ? (d != d ? INFINITY : d) : e;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    return e / m;
}

static void check_traj(const char *fx, const char *file, const double *x, int n, int dim) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/score/%s", src_dir, fx, file);
    kvl_npy ref;
    kvl_status s = kvl_npy_load(path, &ref);
    CHECK_MSG(s == KVL_OK, "%s: %s", path, kvl_last_error());
    if (s) return;
    CHECK_MSG(ref.ndim == 2 && ref.shape[0] == n && ref.shape[1] == dim, "%s %s: shape %lldx%lld, got %dx%d", fx, file,
              (long long)ref.shape[0], (long long)ref.shape[1], n, dim);
    double e = traj_err(x, &ref, n, dim);
    CHECK_MSG(e <= 1e-4, "%s %s: rel err %.3g", fx, file, e);
    kvl_npy_free(&ref);
}

static void parity(const char *fx) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/score/scores.json", src_dir, fx);
    char *text = fx_read_text(path);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    cJSON *cases = cJSON_GetObjectItem(root, "cases"), *toks = cJSON_GetObjectItem(root, "tokens");
    CHECK_MSG(cJSON_GetArraySize(cases) == 9 && cJSON_GetArraySize(toks) >= 24, "%s: malformed scores.json", fx);
    kvl_model *m = cJSON_GetArraySize(cases) == 9 ? fx_load_fixture(fx, KVL_TYPE_F32) : NULL;
    if (!m) goto out;
    int32_t ids[64];
    int T = cJSON_GetArraySize(toks) < 64 ? cJSON_GetArraySize(toks) : 64;
    for (int i = 0; i < T; i++) ids[i] = cJSON_GetArrayItem(toks, i)->valueint;
    kvl_ctx *c = new_ctx(m, 32, 1, 0), *h16 = new_ctx(m, 32, 1, 1);
    int n_cases = 0;
    cJSON *cs;
    cJSON_ArrayForEach(cs, cases) {
        const int n = (int)num(cs, "n_prompt"), a = (int)num(cs, "n_answer");
        const char *spec = cJSON_GetStringValue(cJSON_GetObjectItem(cs, "layers"));
        CHECK(n >= 1 && a >= 1 && n + a <= T && spec);
        if (!(n >= 1 && a >= 1 && n + a <= T && spec)) continue;
        kvl_layer_sel sel;
        CHECK_MSG(kvl_layer_sel_parse(&sel, spec) == KVL_OK, "%s", kvl_last_error());
        kvl_answer_scores sc;
        kvl_status s = kvl_answer_score_forced(c, &sel, ids, n, ids + n, a, &sc);
        CHECK_MSG(s == KVL_OK, "%s: %s", fx, kvl_last_error());
        if (s) continue;
        char what[128];
        snprintf(what, sizeof what, "%s n=%d m=%d layers=%s", fx, n, a, spec);
        CHECK(sc.answer_tokens == a && sc.has_hidden);
        char w[160];
        snprintf(w, sizeof w, "%s kv_token", what);
        check_coe(w, &sc.kv_token, cJSON_GetObjectItem(cs, "kv_token"), 1e-4);
        snprintf(w, sizeof w, "%s kv_layer", what);
        check_coe(w, &sc.kv_layer, cJSON_GetObjectItem(cs, "kv_layer"), 1e-4);
        snprintf(w, sizeof w, "%s hidden", what);
        check_coe(w, &sc.hidden, cJSON_GetObjectItem(cs, "hidden"), 1e-4);
        check_out(what, &sc.out, cs, 1e-4);
        /* an f16 cache rounds K and V to 11 bits: the KV-CoE moves by less than 1e-3 (relative) */
        kvl_answer_scores sh;
        CHECK(kvl_answer_score_forced(h16, &sel, ids, n, ids + n, a, &sh) == KVL_OK);
        snprintf(w, sizeof w, "%s f16 kv_token", what);
        check_coe(w, &sh.kv_token, cJSON_GetObjectItem(cs, "kv_token"), 1e-3);
        n_cases++;
        if (n_cases == 1) { /* the first split with all layers: the trajectories themselves */
            double *x;
            int nn, dim;
            CHECK(kvl_kv_trajectory(kvl_seq_view(c, 0), &sel, KVL_COE_TOKEN, n - 1, n + a - 1, &x, &nn, &dim) == KVL_OK);
            check_traj(fx, "traj_token.npy", x, nn, dim);
            /* the streamed token-axis scores equal those of the stored trajectory */
            kvl_coe t = kvl_coe_scores(x, nn, dim);
            CHECK(fabs(t.mag - sc.kv_token.mag) <= 1e-12 && fabs(t.c - sc.kv_token.c) <= 1e-12);
            free(x);
            CHECK(kvl_kv_trajectory(kvl_seq_view(c, 0), &sel, KVL_COE_LAYER, n - 1, n + a - 1, &x, &nn, &dim) == KVL_OK);
            check_traj(fx, "traj_layer.npy", x, nn, dim);
            free(x);
            CHECK(kvl_hidden_trajectory(kvl_seq_view(c, 0), n - 1, n + a - 1, &x, &nn, &dim) == KVL_OK);
            check_traj(fx, "traj_hidden.npy", x, nn, dim);
            free(x);
        }
    }
    CHECK(n_cases == 9);
    printf("%-11s %d cases\n", fx, n_cases);
    kvl_ctx_free(c);
    kvl_ctx_free(h16);
    kvl_model_free(m);
out:
    cJSON_Delete(root);
    free(text);
}

/* Scoring after a decoding loop (one token per call, logits of the last row) equals teacher forcing; a context
 * without hidden states gives no hidden CoE; bad spans and selections fail cleanly. */
static void decode_equals_forced(void) {
    kvl_model *m = fx_load_fixture("qwen3", KVL_TYPE_F32);
    if (!m) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/qwen3/tokens.npy", src_dir);
    kvl_npy tok;
    CHECK(kvl_npy_load(path, &tok) == KVL_OK);
    const int32_t *ids = tok.data;
    const int n = 7, a = 12, V = kvl_model_hparams(m)->n_vocab;
    kvl_ctx *c = new_ctx(m, 32, 0, 0);
    kvl_logit_stats st = {0};
    CHECK(kvl_eval(c, ids, n, KVL_LOGITS_LAST) == KVL_OK);
    for (int i = 0; i < a; i++) {
        kvl_logit_stats_add(&st, kvl_logits(c, 0), V);
        if (i < a - 1) CHECK(kvl_eval(c, ids + n + i, 1, KVL_LOGITS_LAST) == KVL_OK);
    }
    CHECK(kvl_ctx_n_pos(c) == n + a - 1);
    kvl_answer_scores d, f;
    CHECK(kvl_answer_score(kvl_seq_view(c, 0), NULL, n, a, &st, &d) == KVL_OK);
    CHECK(!d.has_hidden && d.hidden.mag == 0);
    CHECK(kvl_answer_score_forced(c, NULL, ids, n, ids + n, a, &f) == KVL_OK);
    CHECK_NEAR(d.kv_token.r, f.kv_token.r, 1e-5);
    CHECK_NEAR(d.kv_token.c, f.kv_token.c, 1e-5);
    CHECK_NEAR(d.kv_layer.r, f.kv_layer.r, 1e-5);
    CHECK_NEAR(d.out.maxprob, f.out.maxprob, 1e-6);
    CHECK(fabs(d.out.entropy / f.out.entropy - 1) < 1e-5);
    /* the score list: 11 names without hidden, 15 with; values in order */
    const char *names[KVL_MAX_SCORES];
    double vals[KVL_MAX_SCORES];
    CHECK(kvl_answer_score_list(&d, false, names, vals) == 11);
    CHECK(!strcmp(names[2], "kv_token_r") && vals[2] == d.kv_token.r && !strcmp(names[10], "entropy"));
    CHECK(vals[10] == d.out.entropy_score && vals[9] == d.out.ppl_score);
    CHECK(kvl_answer_score_list(&d, true, names, NULL) == 15 && !strcmp(names[11], "hidden_c"));
    /* errors */
    double *x;
    int nn, dim;
    CHECK(kvl_hidden_trajectory(kvl_seq_view(c, 0), 0, 3, &x, &nn, &dim) == KVL_ERR_ARG && strstr(kvl_last_error(), "keep_hidden"));
    CHECK(kvl_answer_score(kvl_seq_view(c, 0), NULL, n, 0, &st, &d) == KVL_ERR_ARG);
    CHECK(kvl_answer_score(kvl_seq_view(c, 0), NULL, n, 40, &st, &d) == KVL_ERR_ARG);
    CHECK(kvl_kv_trajectory(kvl_seq_view(c, 0), NULL, KVL_COE_TOKEN, 5, 5, &x, &nn, &dim) == KVL_ERR_ARG);
    kvl_layer_sel sel;
    CHECK(kvl_layer_sel_parse(&sel, "7") == KVL_OK);
    CHECK(kvl_answer_score(kvl_seq_view(c, 0), &sel, n, a, &st, &d) == KVL_ERR_ARG && strstr(kvl_last_error(), "out of range"));
    CHECK(kvl_layer_sel_parse(&sel, "last:9") == KVL_OK);
    CHECK(kvl_answer_score(kvl_seq_view(c, 0), &sel, n, a, &st, &d) == KVL_ERR_ARG);
    CHECK(kvl_layer_sel_parse(&sel, "last:0") == KVL_ERR_ARG);
    CHECK(kvl_layer_sel_parse(&sel, "1,x") == KVL_ERR_ARG);
    CHECK(kvl_layer_sel_parse(&sel, "all") == KVL_OK && sel.last_n == 0 && sel.n_layers == 0);
    CHECK(kvl_answer_score_forced(c, NULL, ids, 20, ids, 20, &f) == KVL_ERR_RANGE);
    int32_t bad_ans[3] = {ids[0], ids[1], V}; /* the last answer token is never run but must still be a token */
    CHECK(kvl_answer_score_forced(c, NULL, ids, n, bad_ans, 3, &f) == KVL_ERR_ARG && strstr(kvl_last_error(), "vocabulary"));
    kvl_ctx_free(c);
    kvl_npy_free(&tok);
    kvl_model_free(m);
}

static void coe_hand(void) {
    const double PI = 3.14159265358979323846;
    /* a quarter circle in two equal steps: M = 1/sqrt2, G = 1/2 */
    double q[] = {1, 0, 1, 1, 0, 1};
    kvl_coe r = kvl_coe_scores(q, 3, 2);
    CHECK_NEAR(r.mag, 1 / sqrt(2.0), 1e-12);
    CHECK_NEAR(r.ang, 0.5, 1e-12);
    CHECK_NEAR(r.r, 1 / sqrt(2.0) - 0.5, 1e-12);
    CHECK_NEAR(r.c, 1 / sqrt(2.0), 1e-12);
    CHECK(r.warn == 0);
    /* unequal steps: M = (1, 2)/sqrt5, G = (0, 1) (A = pi/4) */
    double u[] = {1, 0, 2, 0, 2, 2};
    r = kvl_coe_scores(u, 3, 2);
    CHECK_NEAR(r.mag, 3 / (2 * sqrt(5.0)), 1e-12);
    CHECK_NEAR(r.ang, 0.5, 1e-12);
    CHECK_NEAR(r.c, sqrt(5 + 4 * cos(1.0)) / (2 * sqrt(5.0)), 1e-12);
    (void)PI;
    /* scale invariance of every score */
    double u3[6];
    for (int i = 0; i < 6; i++) u3[i] = 3.5 * u[i];
    kvl_coe r3 = kvl_coe_scores(u3, 3, 2);
    CHECK_NEAR(r3.mag, r.mag, 1e-12);
    CHECK_NEAR(r3.ang, r.ang, 1e-12);
    CHECK_NEAR(r3.c, r.c, 1e-12);
    /* fewer than two steps: zeros and a warning */
    r = kvl_coe_scores(q, 2, 2);
    CHECK(r.mag == 0 && r.ang == 0 && r.r == 0 && r.c == 0 && r.warn == KVL_COE_WARN_SHORT);
    r = kvl_coe_scores(q, 1, 2);
    CHECK(r.warn == KVL_COE_WARN_SHORT && r.c == 0);
    r = kvl_coe_scores(NULL, 0, 2);
    CHECK(r.warn == KVL_COE_WARN_SHORT);
    /* a closed loop: D = 0 and A = 0 -> every step 0 */
    double loop[] = {1, 0, 0, 1, 1, 0};
    r = kvl_coe_scores(loop, 3, 2);
    CHECK(r.warn == (KVL_COE_WARN_ZERO_DIST | KVL_COE_WARN_ZERO_ANGLE));
    CHECK(r.mag == 0 && r.ang == 0 && r.r == 0 && r.c == 0);
    /* ends parallel but apart: A = 0 only; M = (1, sqrt2)/1, G = 0 -> C = Mag */
    double par[] = {1, 0, 1, 1, 2, 0};
    r = kvl_coe_scores(par, 3, 2);
    CHECK(r.warn == KVL_COE_WARN_ZERO_ANGLE);
    CHECK_NEAR(r.mag, (1 + sqrt(2.0)) / 2, 1e-12);
    CHECK(r.ang == 0);
    CHECK_NEAR(r.c, r.mag, 1e-12);
    /* a zero vector: its angles count as 0, D is still defined */
    double z[] = {0, 0, 1, 0, 1, 1, 0, 1};
    r = kvl_coe_scores(z, 4, 2);
    CHECK(r.warn & KVL_COE_WARN_ZERO_VECTOR);
    CHECK(isfinite(r.mag) && isfinite(r.ang) && isfinite(r.r) && isfinite(r.c));
    CHECK_NEAR(r.mag, (1 + 1 + 1) / 3.0, 1e-12); /* steps 1, 1, 1; D = 1 */
    /* all-zero trajectory */
    double zz[9] = {0};
    r = kvl_coe_scores(zz, 3, 3);
    CHECK(r.mag == 0 && r.c == 0 && (r.warn & KVL_COE_WARN_ZERO_DIST) && (r.warn & KVL_COE_WARN_ZERO_VECTOR));
    char buf[64];
    kvl_coe_warn_str(KVL_COE_WARN_SHORT | KVL_COE_WARN_ZERO_ANGLE, buf, sizeof buf);
    CHECK(!strcmp(buf, "short,zero-angle"));
    kvl_coe_warn_str(0, buf, sizeof buf);
    CHECK(buf[0] == 0);
    /* random long trajectories: finite, C <= Mag (a mean of vectors is no longer than the mean of their lengths) */
    uint64_t rng = 7;
    double *x = malloc(300 * 16 * sizeof *x);
    for (int i = 0; i < 300 * 16; i++) x[i] = kvl_rng_unit(&rng) - 0.5 + (i % 16 == 0 ? i / 16 * 0.01 : 0);
    r = kvl_coe_scores(x, 300, 16);
    CHECK(r.warn == 0 && isfinite(r.r) && r.c <= r.mag + 1e-12 && r.mag > 0);
    /* resampling: linear in the position */
    double line[] = {0, 10, 2, 14, 4, 18}, rs[10];
    kvl_coe_resample(line, 3, 2, 5, rs);
    const double want[10] = {0, 10, 1, 12, 2, 14, 3, 16, 4, 18};
    for (int i = 0; i < 10; i++) CHECK_NEAR(rs[i], want[i], 1e-12);
    kvl_coe_resample(line, 1, 2, 3, rs);
    CHECK(rs[0] == 0 && rs[3] == 10 && rs[4] == 0);
    free(x);
}

static void outputs_hand(void) {
    kvl_logit_stats s = {0};
    float uni[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    kvl_logit_stats_add(&s, uni, 4);
    kvl_output_scores o = kvl_output_scores_of(&s);
    CHECK_NEAR(o.maxprob, 0.25, 1e-12);
    CHECK_NEAR(o.ppl, 4, 1e-12);
    CHECK_NEAR(o.entropy, 2, 1e-12);
    CHECK_NEAR(o.ppl_score, 1 / log(4.0), 1e-12);
    CHECK_NEAR(o.entropy_score, 0.5, 1e-12);
    CHECK(o.warn == 0);
    /* two rows: p = (e/(e+1), 1/(e+1)) and the uniform one: means of the per-row quantities */
    float two[2] = {1, 0};
    kvl_logit_stats_add(&s, two, 2);
    o = kvl_output_scores_of(&s);
    double p = exp(1.0) / (exp(1.0) + 1), h2 = -(p * log2(p) + (1 - p) * log2(1 - p));
    CHECK_NEAR(o.maxprob, (0.25 + p) / 2, 1e-12);
    CHECK_NEAR(o.entropy, (2 + h2) / 2, 1e-12);
    CHECK_NEAR(o.ppl, exp((log(4.0) - log(p)) / 2), 1e-12);
    /* a certain answer: scores stay finite, with a warning; -inf logits add nothing */
    kvl_logit_stats c = {0};
    float sure[3] = {0, -INFINITY, -INFINITY};
    kvl_logit_stats_add(&c, sure, 3);
    o = kvl_output_scores_of(&c);
    CHECK(o.maxprob == 1 && o.entropy == 0 && o.ppl == 1 && isfinite(o.ppl_score) && isfinite(o.entropy_score));
    CHECK(o.warn == 1 && o.ppl_score >= 1e12);
    kvl_logit_stats none = {0};
    o = kvl_output_scores_of(&none);
    CHECK(o.warn == 1 && isfinite(o.ppl_score));
    /* large logits do not overflow */
    kvl_logit_stats big = {0};
    float l[3] = {1000, 999, -1000};
    kvl_logit_stats_add(&big, l, 3);
    o = kvl_output_scores_of(&big);
    CHECK_NEAR(o.maxprob, 1 / (1 + exp(-1.0)), 1e-9);
}

static void check_metrics(const double *s, const bool *y, int n, double au, double fp, double pr) {
    kvl_selfeval_metrics m;
    CHECK(kvl_selfeval_metrics_of(s, y, n, &m) == KVL_OK);
    CHECK_MSG(fabs(m.auroc - au) < 1e-9 && fabs(m.fpr95 - fp) < 1e-9 && fabs(m.aupr - pr) < 1e-9,
              "auroc %.6f fpr95 %.6f aupr %.6f, want %.6f %.6f %.6f", m.auroc, m.fpr95, m.aupr, au, fp, pr);
}

/* Brute force from the definitions: pairs for AUROC, thresholds "score >= t" for the ROC points and precision. */
static void brute(const double *s, const bool *y, int n, double *au, double *fp95, double *ap) {
    double cnt = 0;
    int P = 0, N = 0;
    for (int i = 0; i < n; i++) P += y[i], N += !y[i];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (y[i] && !y[j]) cnt += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
    *au = 100 * cnt / ((double)P * N);
    /* distinct thresholds in descending order */
    double *t = malloc(n * sizeof *t);
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k; j++) seen |= t[j] == s[i];
        if (!seen) t[k++] = s[i];
    }
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (t[j] > t[i]) {
                double w = t[i];
                t[i] = t[j], t[j] = w;
            }
    double pf = 0, pt = 0, prev_rec = 0;
    *ap = 0, *fp95 = -1;
    for (int a = 0; a < k; a++) {
        int tp = 0, f = 0;
        for (int i = 0; i < n; i++)
            if (s[i] >= t[a]) tp += y[i], f += !y[i];
        double tpr = (double)tp / P, fpr = (double)f / N;
        *ap += (tpr - prev_rec) * tp / (tp + f);
        prev_rec = tpr;
        if (*fp95 < 0 && tpr >= 0.95 - 1e-12) *fp95 = 100 * (pf + (0.95 - pt) / (tpr - pt) * (fpr - pf));
        pf = fpr, pt = tpr;
    }
    *ap *= 100;
    free(t);
}

static void metrics_hand(void) {
    /* perfect, reversed */
    double s1[] = {4, 3, 2, 1};
    bool y1[] = {1, 1, 0, 0}, y1r[] = {0, 0, 1, 1};
    check_metrics(s1, y1, 4, 100, 0, 100);
    check_metrics(s1, y1r, 4, 0, 100, 100 * (0.5 / 3 + 0.25));
    /* all tied: the diagonal; FPR95 = 95 by interpolation; precision 1/2 */
    double s2[] = {1, 1, 1, 1};
    bool y2[] = {1, 0, 1, 0};
    check_metrics(s2, y2, 4, 50, 95, 50);
    /* a tie between a correct and an incorrect answer counts one half: 7.5 / 9 */
    double s3[] = {0.9, 0.8, 0.8, 0.7, 0.6, 0.5};
    bool y3[] = {1, 1, 0, 1, 0, 0};
    check_metrics(s3, y3, 6, 100 * 7.5 / 9, 100.0 / 3, 100 * 29.0 / 36);
    /* FPR95 interpolated along a diagonal segment: (0, .5) -> (.5, 1) crosses tpr .95 at fpr .45 */
    double s4[] = {2, 1, 1, 0};
    bool y4[] = {1, 1, 0, 0};
    check_metrics(s4, y4, 4, 100 * 3.5 / 4, 45, 100 * (0.5 * 1 + 0.5 * 2.0 / 3));
    /* one class: the chance-level values, flagged */
    kvl_selfeval_metrics m;
    bool all1[] = {1, 1, 1}, all0[] = {0, 0, 0};
    double s5[] = {0.3, 0.1, 0.2};
    CHECK(kvl_selfeval_metrics_of(s5, all1, 3, &m) == KVL_OK);
    CHECK(m.single_class && m.auroc == 50 && m.fpr95 == 95 && m.aupr == 100 && m.n == 3 && m.n_pos == 3);
    CHECK(kvl_selfeval_metrics_of(s5, all0, 3, &m) == KVL_OK);
    CHECK(m.single_class && m.auroc == 50 && m.fpr95 == 95 && m.aupr == 0 && m.n_pos == 0);
    double *f, *t;
    int np;
    CHECK(kvl_roc_curve(s5, all1, 3, &f, &t, &np) == KVL_ERR_ARG);
    /* bad input */
    double bad[] = {1, NAN};
    CHECK(kvl_selfeval_metrics_of(bad, y1, 2, &m) == KVL_ERR_ARG);
    CHECK(kvl_selfeval_metrics_of(s1, y1, 0, &m) == KVL_ERR_ARG);
    /* the ROC curve of s3: one point per distinct score */
    CHECK(kvl_roc_curve(s3, y3, 6, &f, &t, &np) == KVL_OK);
    const double wf[] = {0, 0, 1.0 / 3, 1.0 / 3, 2.0 / 3, 1}, wt[] = {0, 1.0 / 3, 2.0 / 3, 1, 1, 1};
    CHECK(np == 6);
    for (int i = 0; i < 6 && np == 6; i++) CHECK(fabs(f[i] - wf[i]) < 1e-12 && fabs(t[i] - wt[i]) < 1e-12);
    free(f);
    free(t);
    /* random scores with many ties against the brute-force definitions */
    uint64_t rng = 11;
    for (int rep = 0; rep < 20; rep++) {
        int n = 5 + kvl_rng_below(&rng, 60);
        double s[64];
        bool y[64];
        int P = 0;
        for (int i = 0; i < n; i++) {
            y[i] = kvl_rng_unit(&rng) < 0.4 + 0.02 * rep;
            s[i] = kvl_rng_below(&rng, 6) + (y[i] ? 1 : 0); /* six levels: plenty of ties, some signal */
            P += y[i];
        }
        if (P == 0 || P == n) continue;
        double au, fp, ap;
        brute(s, y, n, &au, &fp, &ap);
        check_metrics(s, y, n, au, fp, ap);
    }
}

static void bootstrap(void) {
    double s[40];
    bool y[40];
    uint64_t rng = 3;
    for (int i = 0; i < 40; i++) {
        y[i] = i % 3 != 0;
        s[i] = kvl_rng_unit(&rng) + (y[i] ? 0.4 : 0);
    }
    kvl_selfeval_metrics pt, lo, hi, lo2, hi2;
    int used;
    CHECK(kvl_selfeval_metrics_of(s, y, 40, &pt) == KVL_OK);
    CHECK(kvl_selfeval_bootstrap(s, y, 40, 500, 42, 0.95, &lo, &hi, &used) == KVL_OK);
    CHECK(used == 500);
    CHECK(lo.auroc <= pt.auroc && pt.auroc <= hi.auroc && lo.auroc < hi.auroc);
    CHECK(lo.fpr95 <= hi.fpr95 && lo.aupr <= hi.aupr && hi.auroc <= 100 && lo.auroc >= 0);
    CHECK(kvl_selfeval_bootstrap(s, y, 40, 500, 42, 0.95, &lo2, &hi2, NULL) == KVL_OK);
    CHECK(lo2.auroc == lo.auroc && hi2.aupr == hi.aupr); /* seeded: reproducible */
    CHECK(kvl_selfeval_bootstrap(s, y, 40, 500, 42, 0.5, &lo2, &hi2, NULL) == KVL_OK);
    CHECK(lo2.auroc >= lo.auroc && hi2.auroc <= hi.auroc); /* a narrower level, a narrower interval */
    /* perfect separation stays perfect in every resample */
    double p[] = {5, 4, 3, 2, 1, 0};
    bool py[] = {1, 1, 1, 0, 0, 0};
    CHECK(kvl_selfeval_bootstrap(p, py, 6, 200, 1, 0.95, &lo, &hi, &used) == KVL_OK);
    CHECK(lo.auroc == 100 && hi.auroc == 100 && lo.fpr95 == 0 && hi.aupr == 100 && used > 150 && used < 200);
    /* one class: no resample is usable; the interval is the point */
    bool one[] = {1, 1, 1, 1, 1, 1};
    CHECK(kvl_selfeval_bootstrap(p, one, 6, 50, 1, 0.95, &lo, &hi, &used) == KVL_OK);
    CHECK(used == 0 && lo.auroc == 50 && hi.auroc == 50 && lo.single_class);
    CHECK(kvl_selfeval_bootstrap(p, py, 6, 0, 1, 0.95, &lo, &hi, &used) == KVL_ERR_ARG);
    CHECK(kvl_selfeval_bootstrap(p, py, 6, 10, 1, 1.0, &lo, &hi, &used) == KVL_ERR_ARG);
}

static int count(const char *s, const char *needle) {
    int k = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++) k++;
    return k;
}

static void svg(void) {
    double a[] = {0.9, 0.8, 0.8, 0.7, 0.6, 0.5}, b[] = {1, 2, 3, 4, 5, 6};
    bool y[] = {1, 1, 0, 1, 0, 0};
    const char *names[] = {"kv_token_r", "a<b&c"};
    const double *sc[] = {a, b};
    char *out = NULL;
    CHECK(kvl_svg_roc("ROC", names, sc, 2, y, 6, &out) == KVL_OK);
    CHECK(out && !strncmp(out, "<svg", 4) && strstr(out, "</svg>\n") && count(out, "<polyline") == 2);
    CHECK(out && strstr(out, "a&lt;b&amp;c (AUROC 11.1)") && strstr(out, "kv_token_r (AUROC 83.3)"));
    free(out);
    bool one[] = {1, 1, 1, 1, 1, 1};
    CHECK(kvl_svg_roc("ROC", names, sc, 2, one, 6, &out) == KVL_ERR_ARG);
    /* trajectories: a panel with both groups and one with only correct answers */
    double c[4 * 3] = {0, 0, 0, 1, 0, 0, 2, 1, 0, 3, 1, 1}, w[4 * 3] = {0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 2, 2};
    kvl_traj_panel p[2] = {{"token axis", 4, 3, c, w, 10, 5}, {"layer axis", 4, 3, c, NULL, 10, 0}};
    CHECK(kvl_svg_trajectories("mean trajectories", p, 2, &out) == KVL_OK);
    CHECK(out && count(out, "<polyline") == 3 && count(out, "<circle") == 6 && strstr(out, "incorrect (n = 5)"));
    free(out);
    CHECK(kvl_svg_trajectories("x", p, 0, &out) == KVL_ERR_ARG);
}

int main(void) {
    src_dir = kvl_test_env("KVL_SRC", ".");
    coe_hand();
    outputs_hand();
    metrics_hand();
    bootstrap();
    svg();
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/qwen3/score/scores.json", src_dir);
    if (access(path, R_OK) == 0) {
        const char *fx[] = {"llama", "qwen2", "qwen3", "qwen3_tied"};
        for (int i = 0; i < 4; i++) parity(fx[i]);
        printf("worst relative error over all scores: f32 cache %.2e (bound 1e-4), f16 cache KV-CoE %.2e\n", worst_all,
               worst_f16);
        decode_equals_forced();
    } else {
        printf("no score fixtures under %s/tests/fixtures: parity not run\n", src_dir);
        CHECK(0);
    }
    return kvl_test_result("test_selfeval");
}
