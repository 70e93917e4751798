/* The probe: the MLP's gradient against central finite differences, one Adam step against its closed form,
 * training on a learnable synthetic problem (loss falls far below the constant predictor's, held-out AUROC high),
 * the file's round trip and its corrupt variants, the metrics on a hand-computed example, and labels. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvlens.h"
#include "test_util.h"
#include "think/mlp.h"
#include "think/probe.h"
#include "util/rng.h"

static double gauss(uint64_t *s) {
    double u1 = kvl_rng_unit(s), u2 = kvl_rng_unit(s);
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static void test_gradient(void) {
    const int F = 5, H = 7, B = 6;
    const size_t np = kvl_mlp_n_params(F, H);
    CHECK(np == (size_t)(H * F + 2 * H + 1));
    float *p = malloc(np * sizeof *p), *g = malloc(np * sizeof *g), *work = malloc(kvl_mlp_work_size(H, B) * sizeof *work);
    float X[8 * 5], y[8];
    uint64_t s = 7;
    for (int i = 0; i < 8 * F; i++) X[i] = (float)gauss(&s);
    for (int i = 0; i < 8; i++) y[i] = (float)kvl_rng_unit(&s);
    kvl_mlp_init(p, F, H, 3);
    /* rows picks 6 of the 8 rows, out of order: the gradient must use exactly those */
    const int rows[6] = {7, 0, 3, 5, 1, 6};
    double loss = kvl_mlp_loss_grad(p, F, H, X, rows, y, B, g, work);
    /* the loss itself against a direct computation with kvl_mlp_forward */
    float z[7];
    double want = 0;
    for (int b = 0; b < B; b++) {
        double e = kvl_mlp_forward(p, F, H, X + rows[b] * F, z) - y[rows[b]];
        want += e * e / B;
    }
    CHECK_NEAR(loss, want, 1e-6);
    int bad = 0, active = 0;
    const float eps = 1e-3f;
    for (size_t i = 0; i < np; i++) {
        float keep = p[i];
        p[i] = keep + eps;
        double lp = kvl_mlp_loss_grad(p, F, H, X, rows, y, B, NULL, work);
        p[i] = keep - eps;
        double lm = kvl_mlp_loss_grad(p, F, H, X, rows, y, B, NULL, work);
        p[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        if (fabs(fd) > 1e-4) active++;
        if (fabs(fd - g[i]) > 2e-3 + 1e-2 * fabs(fd)) {
            bad++;
            fprintf(stderr, "param %zu: analytic %g, finite difference %g\n", i, g[i], fd);
        }
    }
    CHECK_MSG(bad == 0, "%d of %zu gradient entries disagree", bad, np);
    CHECK_MSG(active > (int)np / 3, "only %d gradient entries are non-zero: the check would be weak", active);
    free(p), free(g), free(work);
}

/* The first Adam step moves every parameter with a non-zero gradient by lr against its sign. */
static void test_adam(void) {
    float p[4] = {1, -2, 0.5f, 3}, g[4] = {0.3f, -4, 0, 1e-3f};
    kvl_adam a;
    CHECK(kvl_adam_init(&a, 4, 0.01) == 0);
    kvl_adam_step(&a, p, g, 4);
    CHECK_NEAR(p[0], 1 - 0.01, 1e-6);
    CHECK_NEAR(p[1], -2 + 0.01, 1e-6);
    CHECK_NEAR(p[2], 0.5, 1e-7);
    CHECK_NEAR(p[3], 3 - 0.01 * 1e-3 / (1e-3 + 1e-8), 1e-6);
    kvl_adam_free(&a);
}

/* A learnable problem: labels 0/25/75/100 by thresholds of a hidden linear score of 12 Gaussian features (two of
 * them copies in each group, as the two views of a question). */
#define N_SYN 1200
#define F_SYN 12
static void make_synthetic(float *X, float *y, int *group, uint64_t seed) {
    uint64_t s = seed;
    float w[F_SYN];
    uint64_t ws = 99;
    for (int k = 0; k < F_SYN; k++) w[k] = (float)gauss(&ws);
    for (int i = 0; i < N_SYN; i += 2) {
        double t = 0;
        for (int k = 0; k < F_SYN; k++) {
            X[i * F_SYN + k] = (float)(gauss(&s) * 3 + 10); /* offset and scale: standardisation must cope */
            t += w[k] * (X[i * F_SYN + k] - 10) / 3;
        }
        y[i] = t < -1.5 ? 0 : t < 0 ? 25 : t < 1.5 ? 75 : 100;
        for (int k = 0; k < F_SYN; k++) X[(i + 1) * F_SYN + k] = X[i * F_SYN + k] + (float)(0.1 * gauss(&s));
        y[i + 1] = y[i];
        group[i] = group[i + 1] = i / 2;
    }
}

typedef struct {
    int calls;
    double first_train, last_train;
} progress_log;

static void on_epoch(void *user, int epoch, int epochs, double train, double val) {
    progress_log *l = user;
    (void)epochs;
    if (epoch == 1) l->first_train = train;
    l->last_train = train;
    l->calls++;
    CHECK(val >= 0);
}

static void test_training(void) {
    float *X = malloc(N_SYN * F_SYN * sizeof *X), *y = malloc(N_SYN * sizeof *y);
    float *Xt = malloc(N_SYN * F_SYN * sizeof *Xt), *yt = malloc(N_SYN * sizeof *yt);
    int *group = malloc(N_SYN * sizeof *group), *group_t = malloc(N_SYN * sizeof *group_t);
    make_synthetic(X, y, group, 1);
    make_synthetic(Xt, yt, group_t, 2); /* a fresh test set from another seed */
    double mean = 0, var = 0;
    for (int i = 0; i < N_SYN; i++) mean += y[i] / N_SYN;
    for (int i = 0; i < N_SYN; i++) var += (y[i] - mean) * (y[i] - mean) / N_SYN;

    kvl_probe_train_params tp = kvl_probe_train_default_params();
    tp.hidden = 32;
    tp.epochs = 60;
    tp.patience = 15;
    tp.lr = 3e-3;
    progress_log log = {0};
    tp.progress = on_epoch;
    tp.user = &log;
    kvl_repr_config feat = kvl_repr_classifier_config(32, 8);
    kvl_probe *p = NULL;
    kvl_probe_train_result res;
    kvl_status s = kvl_probe_train(NULL, &feat, X, y, group, N_SYN, F_SYN, &tp, &p, &res);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    if (!p) goto out;
    CHECK(log.calls == res.epochs_run && res.epochs_run >= 1);
    CHECK(res.best_epoch >= 1 && res.best_epoch <= res.epochs_run);
    /* validation by whole groups: 20% of 600 questions, both views each */
    CHECK(res.n_val == 240 && res.n_train == N_SYN - 240);
    CHECK_MSG(log.last_train < 0.5 * log.first_train, "train loss %g -> %g", log.first_train, log.last_train);
    CHECK_MSG(res.val_mse < 0.3 * var, "validation MSE %g vs label variance %g", res.val_mse, var);
    float *d = malloc(N_SYN * sizeof *d);
    for (int i = 0; i < N_SYN; i++) d[i] = kvl_probe_score(p, Xt + i * F_SYN);
    kvl_probe_metrics m = kvl_probe_evaluate(d, yt, N_SYN, 50);
    CHECK_MSG(m.auroc > 90 && m.accuracy > 0.8 && m.mse < 0.3 * var, "held out: AUROC %.1f accuracy %.3f MSE %.1f",
              m.auroc, m.accuracy, m.mse);

    /* save, load: the same scores bit for bit, the same configuration */
    char path[256];
    snprintf(path, sizeof path, "%s/kvl_probe_%d.bin", kvl_test_env("TMPDIR", "/tmp"), (int)getpid());
    CHECK(kvl_probe_save(p, path) == KVL_OK);
    kvl_probe *q = NULL;
    s = kvl_probe_load(path, &q);
    CHECK_MSG(s == KVL_OK, "%s", kvl_last_error());
    if (q) {
        CHECK(kvl_probe_dim(q) == F_SYN && kvl_probe_hidden(q) == 32);
        int same = 1;
        for (int i = 0; i < 50; i++) same &= kvl_probe_score(q, Xt + i * F_SYN) == d[i];
        CHECK(same);
        char a[512], b[512];
        kvl_repr_describe(kvl_probe_features(q), a, sizeof a);
        kvl_repr_describe(&feat, b, sizeof b);
        CHECK_MSG(!strcmp(a, b), "%s vs %s", a, b);
        CHECK(q->train.best_epoch == res.best_epoch && fabs(q->train.val_mse - res.val_mse) < 1e-6 * res.val_mse);
        kvl_probe_free(q);
    }
    /* corrupt files: a clear error, never a crash */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(size);
    CHECK(fread(bytes, 1, size, f) == (size_t)size);
    fclose(f);
    struct {
        long len, at;
        unsigned char byte;
        kvl_status want;
    } cases[] = {
        {size - 4, -1, 0, KVL_ERR_FORMAT},  /* truncated weights */
        {10, -1, 0, KVL_ERR_FORMAT},        /* truncated header */
        {size, 0, 'X', KVL_ERR_FORMAT},     /* magic */
        {size, 8, 9, KVL_ERR_UNSUPPORTED},  /* version */
        {size, 12, 0xff, KVL_ERR_FORMAT},   /* JSON length */
        {size, 17, '!', KVL_ERR_FORMAT},    /* JSON text */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char keep = cases[i].at >= 0 ? bytes[cases[i].at] : 0;
        if (cases[i].at >= 0) bytes[cases[i].at] = cases[i].byte;
        f = fopen(path, "wb");
        fwrite(bytes, 1, cases[i].len, f);
        fclose(f);
        if (cases[i].at >= 0) bytes[cases[i].at] = keep;
        kvl_probe *r = NULL;
        s = kvl_probe_load(path, &r);
        CHECK_MSG(s == cases[i].want && !r && strlen(kvl_last_error()) > 0, "case %zu: %d (%s)", i, s, kvl_last_error());
    }
    unlink(path);
    CHECK(kvl_probe_load(path, &q) == KVL_ERR_IO);
    free(bytes);
    free(d);
    kvl_probe_free(p);
out:
    /* bad input */
    CHECK(kvl_probe_train(NULL, &feat, X, y, NULL, 1, F_SYN, NULL, &p, NULL) == KVL_ERR_ARG);
    y[3] = 101;
    CHECK(kvl_probe_train(NULL, &feat, X, y, NULL, N_SYN, F_SYN, NULL, &p, NULL) == KVL_ERR_ARG);
    free(X), free(y), free(Xt), free(yt), free(group), free(group_t);
}

static void test_metrics(void) {
    const float d[4] = {10, 20, 20, 80}, y[4] = {0, 75, 0, 100};
    kvl_probe_metrics m = kvl_probe_evaluate(d, y, 4, 50);
    CHECK_NEAR(m.auroc, 87.5, 1e-9); /* pairs: 1 + 0.5 (tie) + 1 + 1 of 4 */
    CHECK_NEAR(m.accuracy, 0.75, 1e-12);
    CHECK_NEAR(m.mse, (100 + 3025 + 400 + 400) / 4.0, 1e-9);
    CHECK(m.n_positive == 2 && m.n == 4);
    const float y0[4] = {0, 25, 0, 25};
    CHECK(kvl_probe_evaluate(d, y0, 4, 50).auroc == -1);
}

static void test_labels(void) {
    CHECK(kvl_think_label(true, 10, false, 32) == 0);
    CHECK(kvl_think_label(true, 32, true, 32) == 25);
    CHECK(kvl_think_label(false, 5, true, 32) == 75);
    CHECK(kvl_think_label(false, 5, false, 32) == 100);
    kvl_label_row r;
    const char *good = "{\"index\": 4, \"id\": \"q-4\", \"level\": 3, \"format\": \"gsm8k\", \"question\": \"Q?\", "
                       "\"user\": \"Q?\\nEnd.\", \"label\": 25, \"fast_correct\": true, \"fast_tokens\": 40, "
                       "\"slow_correct\": false, \"slow_tokens\": 99, \"short_bound\": 32}";
    CHECK(kvl_label_parse(good, &r) == KVL_OK);
    CHECK(r.index == 4 && r.level == 3 && r.label == 25 && r.fast_correct == 1 && r.slow_correct == 0);
    CHECK(r.fast_tokens == 40 && r.slow_tokens == 99 && r.short_bound == 32);
    CHECK(r.id && !strcmp(r.id, "\"q-4\"") && !strcmp(r.user, "Q?\nEnd.") && !strcmp(r.format, "gsm8k"));
    char *line = kvl_label_format(&r);
    kvl_label_row r2;
    CHECK(line && kvl_label_parse(line, &r2) == KVL_OK);
    CHECK(r2.index == 4 && !strcmp(r2.id, r.id) && !strcmp(r2.user, r.user) && r2.label == 25 && r2.short_bound == 32);
    CHECK(line && line[strlen(line) - 1] == '\n');
    free(line);
    kvl_label_row_free(&r2);
    kvl_label_row_free(&r);
    CHECK(kvl_label_parse("{\"question\": \"x\", \"label\": 0}", &r) == KVL_OK && !strcmp(r.user, "x") && r.index == -1);
    kvl_label_row_free(&r);
    struct {
        const char *line, *msg;
    } bad[] = {
        {"{\"question\": \"x\", \"label\": 0, \"lable\": 1}", "unknown field \"lable\""},
        {"{\"question\": \"x\", \"label\": 50}", "label 50"},
        {"{\"question\": \"x\"}", "missing field \"label\""},
        {"{\"label\": 0}", "missing field \"question\""},
        {"{\"question\": \"x\", \"label\": 0, \"fast_correct\": false, \"fast_tokens\": 3, \"slow_correct\": true, "
         "\"short_bound\": 8}", "contradicts"},
        {"{\"question\": 5, \"label\": 0}", "\"question\" must be a string"},
        {"[1, 2]", "not a JSON object"},
        {"{\"question\": \"x\", \"label\": 25.5}", "\"label\" must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kvl_status s = kvl_label_parse(bad[i].line, &r);
        CHECK_MSG(s == KVL_ERR_FORMAT && strstr(kvl_last_error(), bad[i].msg), "%s -> %s", bad[i].line, kvl_last_error());
        kvl_label_row_free(&r);
    }
}

int main(void) {
    test_gradient();
    test_adam();
    test_training();
    test_metrics();
    test_labels();
    return kvl_test_result("test_probe");
}
