/* bench_think: the cost of the two-step controller's check (advance the incremental feature window by one position,
 * read the features, score them with the probe MLP) as a fraction of a decode step, on a random-weight model of a
 * real shape. Usage: bench_think [SHAPE] [TYPE_NAME] [THREADS] [STEPS]   (defaults: qwen3-8b q8_0 2 32) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvlens.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *shape = argc > 1 ? argv[1] : "qwen3-8b", *tname = argc > 2 ? argv[2] : "q8_0";
    int threads = argc > 3 ? atoi(argv[3]) : 2, steps = argc > 4 ? atoi(argv[4]) : 32;
    int type = -1;
    for (int t = 0; t < 40; t++)
        if (kvl_type_name(t) && !strcmp(kvl_type_name(t), tname)) type = t;
    kvl_model *m;
    if (type < 0 || kvl_model_random(shape, type, 1, &m)) {
        fprintf(stderr, "bench_think: %s\n", type < 0 ? "unknown type" : kvl_last_error());
        return 1;
    }
    kvl_ctx_params cp = kvl_ctx_default_params();
    cp.n_ctx = 64 + steps + 1;
    cp.n_threads = threads;
    kvl_ctx *c;
    if (kvl_ctx_new(m, &cp, &c)) return fprintf(stderr, "bench_think: %s\n", kvl_last_error()), 1;
    /* the paper's classifier features for this shape: window 32, last 4 layers, kv_cat, sum, flatten, mean */
    kvl_repr_config cfg = kvl_repr_classifier_config(32, 4);
    int dim;
    if (kvl_repr_dim(m, &cfg, &dim)) return fprintf(stderr, "bench_think: %s\n", kvl_last_error()), 1;
    /* a probe of the right shape (trained briefly on synthetic rows: only its size matters here) */
    enum { N = 64 };
    float *X = malloc((size_t)N * dim * sizeof *X), y[N];
    for (int i = 0; i < N * dim; i++) X[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int i = 0; i < N; i++) y[i] = (float)(i % 2) * 100;
    kvl_probe_train_params tp = kvl_probe_train_default_params();
    tp.epochs = 2;
    tp.val_fraction = 0;
    kvl_probe *probe;
    if (kvl_probe_train(NULL, &cfg, X, y, NULL, N, dim, &tp, &probe, NULL))
        return fprintf(stderr, "bench_think: %s\n", kvl_last_error()), 1;
    int32_t tok[64];
    for (int i = 0; i < 64; i++) tok[i] = 100 + i;
    if (kvl_eval(c, tok, 64, KVL_LOGITS_LAST)) return fprintf(stderr, "bench_think: %s\n", kvl_last_error()), 1;
    kvl_feat_window *w;
    if (kvl_feat_window_new(kvl_seq_view(c, 0), &cfg, 0, &w) || kvl_feat_window_advance(w, kvl_seq_view(c, 0), 64))
        return fprintf(stderr, "bench_think: %s\n", kvl_last_error()), 1;
    float *f = malloc(dim * sizeof *f);
    double *t_step = malloc(steps * sizeof *t_step), *t_check = malloc(steps * sizeof *t_check), sink = 0;
    for (int s = 0; s < steps; s++) {
        int32_t t = 200 + s;
        double t0 = now();
        kvl_eval(c, &t, 1, KVL_LOGITS_LAST);
        double t1 = now();
        kvl_feat_window_advance(w, kvl_seq_view(c, 0), kvl_ctx_n_pos(c));
        kvl_feat_window_get(w, f);
        sink += kvl_probe_score(probe, f);
        double t2 = now();
        t_step[s] = t1 - t0;
        t_check[s] = t2 - t1;
    }
    qsort(t_step, steps, sizeof *t_step, cmp);
    qsort(t_check, steps, sizeof *t_check, cmp);
    double ms = t_step[steps / 2] * 1e3, mc = t_check[steps / 2] * 1e3;
    printf("{\"shape\": \"%s\", \"type\": \"%s\", \"threads\": %d, \"features\": %d, \"steps\": %d, "
           "\"decode_ms\": %.3f, \"check_ms\": %.4f, \"check_fraction\": %.5f, \"sink\": %.1f}\n",
           shape, tname, threads, dim, steps, ms, mc, mc / ms, sink * 0);
    kvl_feat_window_free(w);
    kvl_probe_free(probe);
    kvl_ctx_free(c);
    kvl_model_free(m);
    free(X), free(f), free(t_step), free(t_check);
    return 0;
}
