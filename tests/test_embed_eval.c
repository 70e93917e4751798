/* The classification protocol of the embedding evaluation: logistic-regression gradient and optimality, separable
 * synthetic data (perfect scores), label-free data (chance scores), macro-F1 by hand, stratified splits. */
#include <string.h>

#include "embed/classify.h"
#include "embed/logreg.h"
#include "kvlens.h"
#include "test_util.h"
#include "util/rng.h"

static double gauss(uint64_t *s) {
    double r = sqrt(-2 * log(kvl_rng_unit(s)));
    return r * cos(6.283185307179586 * kvl_rng_unit(s));
}

/* n rows of dim features: class c (n_class classes, round-robin) centred at `sep` on axis c, unit noise. */
static void clusters(float *X, int *y, int n, int dim, int n_class, double sep, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        y[i] = i % n_class;
        for (int j = 0; j < dim; j++) X[i * dim + j] = (float)(gauss(&seed) + (j == y[i] ? sep : 0));
    }
}

static void gradient_check(void) {
    enum { N = 30, D = 6, K = 3 };
    float X[N * D];
    int y[N], rows[N];
    clusters(X, y, N, D, K, 1.0, 7);
    for (int i = 0; i < N; i++) rows[i] = i;
    double w[K * (D + 1)], g[K * (D + 1)];
    uint64_t s = 11;
    for (int i = 0; i < K * (D + 1); i++) w[i] = gauss(&s);
    kvl_logreg_objective(w, X, D, y, K, rows, N, 0.5, g);
    double worst = 0;
    for (int i = 0; i < K * (D + 1); i++) {
        double h = 1e-6, keep = w[i];
        w[i] = keep + h;
        double fp = kvl_logreg_objective(w, X, D, y, K, rows, N, 0.5, NULL);
        w[i] = keep - h;
        double fm = kvl_logreg_objective(w, X, D, y, K, rows, N, 0.5, NULL);
        w[i] = keep;
        double e = fabs((fp - fm) / (2 * h) - g[i]);
        worst = e > worst ? e : worst;
    }
    CHECK_MSG(worst < 1e-6, "gradient vs central differences: %g", worst);
    /* at w = 0 every class has probability 1/K: the loss is log K */
    memset(w, 0, sizeof w);
    CHECK_NEAR(kvl_logreg_objective(w, X, D, y, K, rows, N, 1.0, NULL), log(K), 1e-12);
    /* the fit reaches a stationary point (the minimum of a strictly convex objective) */
    kvl_logreg lr;
    int iters = 0;
    CHECK(kvl_logreg_fit(&lr, X, D, y, K, rows, N, 0.5, 500, &iters) == KVL_OK);
    kvl_logreg_objective(lr.w, X, D, y, K, rows, N, 0.5, g);
    double gmax = 0;
    for (int i = 0; i < K * (D + 1); i++) gmax = fabs(g[i]) > gmax ? fabs(g[i]) : gmax;
    CHECK_MSG(gmax < 1e-5, "gradient at the fit: %g after %d iterations", gmax, iters);
    CHECK(kvl_logreg_objective(lr.w, X, D, y, K, rows, N, 0.5, NULL) < log(K));
    kvl_logreg_free(&lr);
    CHECK(kvl_logreg_fit(&lr, X, D, y, 1, rows, N, 1.0, 100, NULL) == KVL_ERR_ARG);
    CHECK(kvl_logreg_fit(&lr, X, D, y, K, rows, N, 0.0, 100, NULL) == KVL_ERR_ARG);
}

static void separable(void) {
    enum { N = 240, D = 32, K = 4 };
    static float X[N * D];
    int y[N];
    clusters(X, y, N, D, K, 8.0, 3); /* centres 8 apart on their own axes, unit noise: separable */
    kvl_clf_params p = kvl_clf_default_params();
    kvl_clf_result r;
    CHECK(kvl_clf_evaluate(X, N, D, y, K, NULL, &p, &r) == KVL_OK);
    CHECK(r.acc_mean == 1.0 && r.f1_mean == 1.0 && r.acc_std == 0 && r.f1_std == 0);
    CHECK(r.n_test == 72 && r.n_train == 168); /* 30% of each class of 60 */
    /* a given split */
    int8_t split[N];
    for (int i = 0; i < N; i++) split[i] = i >= 200;
    CHECK(kvl_clf_evaluate(X, N, D, y, K, split, &p, &r) == KVL_OK);
    CHECK(r.acc_mean == 1.0 && r.n_train == 200 && r.n_test == 40);
    /* few-shot undersampling still separates these clusters */
    p.samples_per_label = 4;
    CHECK(kvl_clf_evaluate(X, N, D, y, K, split, &p, &r) == KVL_OK);
    CHECK(r.n_train == 16 && r.acc_mean > 0.95);

    /* labels unrelated to the features: test scores near chance (1/K), far from 1 */
    int shuffled[N];
    uint64_t s = 99;
    for (int i = 0; i < N; i++) shuffled[i] = kvl_rng_below(&s, K);
    p = kvl_clf_default_params();
    p.n_seeds = 10;
    CHECK(kvl_clf_evaluate(X, N, D, shuffled, K, NULL, &p, &r) == KVL_OK);
    CHECK_MSG(r.acc_mean < 0.45 && r.acc_std > 0, "random labels: accuracy %.3f +- %.3f", r.acc_mean, r.acc_std);

    /* bad input */
    y[5] = K;
    CHECK(kvl_clf_evaluate(X, N, D, y, K, NULL, &p, &r) == KVL_ERR_ARG);
    y[5] = 1;
    CHECK(kvl_clf_evaluate(X, N, D, y, 1, NULL, &p, &r) == KVL_ERR_ARG);
    for (int i = 0; i < N; i++) split[i] = 0;
    CHECK(kvl_clf_evaluate(X, N, D, y, K, split, &p, &r) == KVL_ERR_ARG); /* no test rows */
    CHECK(strstr(kvl_last_error(), "0 test rows") != NULL);
    p.test_fraction = 1.0;
    CHECK(kvl_clf_evaluate(X, N, D, y, K, NULL, &p, &r) == KVL_ERR_ARG);
}

static void f1_by_hand(void) {
    /* class 0: tp 1 fp 1 fn 1 -> 1/2; class 1: tp 2 fp 1 fn 0 -> 4/5; class 2: tp 0 fn 1 -> 0; class 3 absent */
    int truth[5] = {0, 0, 1, 1, 2}, pred[5] = {0, 1, 1, 1, 0};
    CHECK_NEAR(kvl_macro_f1(truth, pred, 5, 4), (0.5 + 0.8 + 0.0) / 3, 1e-12);
    /* a label that only the predictions contain counts (F1 0) */
    int t2[4] = {0, 0, 1, 1}, p2[4] = {0, 0, 1, 3};
    CHECK_NEAR(kvl_macro_f1(t2, p2, 4, 4), (1.0 + 2.0 / 3 + 0.0) / 3, 1e-12);
    CHECK_NEAR(kvl_macro_f1(t2, t2, 4, 4), 1.0, 0);
}

static void splits(void) {
    enum { N = 53 };
    int labels[N], train[N], test[N], nt, ne, train2[N], test2[N], nt2, ne2;
    for (int i = 0; i < N; i++) labels[i] = i < 30 ? 0 : i < 50 ? 1 : i < 52 ? 2 : 3; /* sizes 30, 20, 2, 1 */
    CHECK(kvl_stratified_split(labels, N, 4, 0.3, 5, train, &nt, test, &ne) == KVL_OK);
    int seen[N] = {0}, per[4] = {0};
    for (int i = 0; i < nt; i++) seen[train[i]]++;
    for (int i = 0; i < ne; i++) seen[test[i]]++, per[labels[test[i]]]++;
    int all_once = 1;
    for (int i = 0; i < N; i++) all_once &= seen[i] == 1;
    CHECK(all_once && nt + ne == N);
    CHECK(per[0] == 9 && per[1] == 6 && per[2] == 1 && per[3] == 0);
    CHECK(kvl_stratified_split(labels, N, 4, 0.3, 5, train2, &nt2, test2, &ne2) == KVL_OK);
    CHECK(nt2 == nt && !memcmp(test, test2, ne * sizeof *test)); /* same seed, same split */
    CHECK(kvl_stratified_split(labels, N, 4, 0.3, 6, train2, &nt2, test2, &ne2) == KVL_OK);
    CHECK(ne2 == ne && memcmp(test, test2, ne * sizeof *test) != 0); /* another seed, another split */
    CHECK(kvl_stratified_split(labels, N, 4, 0.0, 5, train, &nt, test, &ne) == KVL_ERR_ARG);
}

int main(void) {
    gradient_check();
    separable();
    f1_by_hand();
    splits();
    return kvl_test_result("embed_eval");
}
