/* MTEB-style classification protocol: per seed, a train/test split (given, or stratified and seeded), optional
 * undersampling of the train rows per label, a logistic regression, and accuracy and macro-F1 on the test rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/classify.h"
#include "embed/logreg.h"
#include "util/error.h"
#include "util/rng.h"

kvl_clf_params kvl_clf_default_params(void) {
    kvl_clf_params p = {.n_seeds = 5, .seed = 42, .test_fraction = 0.3, .samples_per_label = 0, .C = 1.0, .max_iter = 500};
    return p;
}

static void shuffle(int *a, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = kvl_rng_below(rng, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Rows of each class, grouped: by_class[start[c] .. start[c+1]) in row order; fill is n_class ints of scratch. */
static void group_rows(const int *labels, int n_class, const int *subset, int n_subset, int *start, int *by_class,
                       int *fill) {
    memset(start, 0, (n_class + 1) * sizeof *start);
    for (int i = 0; i < n_subset; i++) start[labels[subset ? subset[i] : i] + 1]++;
    for (int c = 0; c < n_class; c++) start[c + 1] += start[c];
    memcpy(fill, start, n_class * sizeof *fill);
    for (int i = 0; i < n_subset; i++) {
        int r = subset ? subset[i] : i;
        by_class[fill[labels[r]]++] = r;
    }
}

/* Macro-F1 over the labels present among the true or predicted test labels; counts: 3 * n_class ints. */
static double macro_f1(const int *truth, const int *pred, int n, int n_class, int *counts) {
    int *tp = counts, *fp = counts + n_class, *fn = counts + 2 * n_class;
    memset(counts, 0, 3 * n_class * sizeof *counts);
    for (int i = 0; i < n; i++) {
        if (truth[i] == pred[i]) {
            tp[truth[i]]++;
        } else {
            fp[pred[i]]++;
            fn[truth[i]]++;
        }
    }
    double sum = 0;
    int present = 0;
    for (int c = 0; c < n_class; c++) {
        if (!tp[c] && !fp[c] && !fn[c]) continue;
        sum += 2.0 * tp[c] / (2.0 * tp[c] + fp[c] + fn[c]);
        present++;
    }
    return present ? sum / present : 0;
}

double kvl_macro_f1(const int *truth, const int *pred, int n, int n_class) {
    int *counts = malloc(3 * (size_t)n_class * sizeof *counts);
    double f = counts ? macro_f1(truth, pred, n, n_class, counts) : NAN;
    free(counts);
    return f;
}

/* by_class, start (n_class + 1) and fill (n_class) are scratch. */
static void split_rows(const int *labels, int n, int n_class, double frac, uint64_t *rng, int *train, int *n_train,
                       int *test, int *n_test, int *by_class, int *start, int *fill) {
    *n_train = *n_test = 0;
    group_rows(labels, n_class, NULL, n, start, by_class, fill);
    for (int c = 0; c < n_class; c++) {
        int nc = start[c + 1] - start[c], *rows = by_class + start[c];
        int k = nc < 2 ? 0 : (int)lround(frac * nc);
        if (nc >= 2) k = k < 1 ? 1 : k > nc - 1 ? nc - 1 : k;
        shuffle(rows, nc, rng);
        for (int i = 0; i < nc; i++) {
            if (i < k) test[(*n_test)++] = rows[i];
            else train[(*n_train)++] = rows[i];
        }
    }
}

kvl_status kvl_stratified_split(const int *labels, int n, int n_class, double frac, uint64_t seed, int *train,
                                int *n_train, int *test, int *n_test) {
    if (n <= 0 || n_class < 1 || !(frac > 0 && frac < 1)) return kvl_fail(KVL_ERR_ARG, "bad split arguments");
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_class) return kvl_fail(KVL_ERR_ARG, "row %d has label %d outside 0..%d", i, labels[i], n_class - 1);
    int *scratch = malloc(((size_t)n + 2 * n_class + 1) * sizeof *scratch);
    if (!scratch) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    split_rows(labels, n, n_class, frac, &seed, train, n_train, test, n_test, scratch, scratch + n, scratch + n + n_class + 1);
    free(scratch);
    return KVL_OK;
}

kvl_status kvl_clf_evaluate(const float *X, int n, int dim, const int *labels, int n_class, const int8_t *split,
                            const kvl_clf_params *pp, kvl_clf_result *out) {
    kvl_clf_params p = pp ? *pp : kvl_clf_default_params();
    if (!X || !labels || !out || n <= 0 || dim <= 0) return kvl_fail(KVL_ERR_ARG, "kvl_clf_evaluate: no data");
    if (n_class < 2) return kvl_fail(KVL_ERR_ARG, "classification needs at least two labels (got %d)", n_class);
    if (p.n_seeds < 1 || !(p.C > 0) || p.max_iter < 1 || p.samples_per_label < 0 ||
        (!split && !(p.test_fraction > 0 && p.test_fraction < 1)))
        return kvl_fail(KVL_ERR_ARG, "bad classification parameters (seeds >= 1, C > 0, iterations >= 1, "
                                     "0 < test fraction < 1)");
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_class)
            return kvl_fail(KVL_ERR_ARG, "row %d has label %d outside 0..%d", i, labels[i], n_class - 1);
        if (split && split[i] != 0 && split[i] != 1) return kvl_fail(KVL_ERR_ARG, "row %d has split %d (expected 0 or 1)", i, split[i]);
    }
    int *mem = malloc(((size_t)6 * n + 5 * (size_t)n_class + 2) * sizeof *mem);
    if (!mem) return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    int *train = mem, *test = train + n, *by_class = test + n, *truth = by_class + n, *pred = truth + n,
        *base = pred + n, *start = base + n, *counts = start + n_class + 2;
    double acc_s = 0, acc_ss = 0, f1_s = 0, f1_ss = 0;
    kvl_status st = KVL_OK;
    for (int e = 0; e < p.n_seeds && !st; e++) {
        uint64_t rng = p.seed + (uint64_t)e;
        int n_train = 0, n_test = 0;
        /* base train rows: the given split, or a stratified draw */
        if (split) {
            for (int i = 0; i < n; i++) {
                if (split[i]) test[n_test++] = i;
                else base[n_train++] = i;
            }
        } else {
            split_rows(labels, n, n_class, p.test_fraction, &rng, base, &n_train, test, &n_test, by_class, start, counts);
        }
        /* undersampling: at most samples_per_label train rows per label, drawn per seed */
        if (p.samples_per_label > 0) {
            group_rows(labels, n_class, base, n_train, start, by_class, counts);
            n_train = 0;
            for (int c = 0; c < n_class; c++) {
                int nc = start[c + 1] - start[c], *rows = by_class + start[c];
                shuffle(rows, nc, &rng);
                for (int i = 0; i < nc && i < p.samples_per_label; i++) train[n_train++] = rows[i];
            }
        } else {
            memcpy(train, base, n_train * sizeof *train);
        }
        if (!n_train || !n_test) {
            st = kvl_fail(KVL_ERR_ARG, "the split leaves %d train and %d test rows: both must be non-empty", n_train, n_test);
            break;
        }
        if (e == 0) out->n_train = n_train, out->n_test = n_test;
        kvl_logreg lr;
        st = kvl_logreg_fit(&lr, X, dim, labels, n_class, train, n_train, p.C, p.max_iter, NULL);
        if (st) break;
        int correct = 0;
        for (int i = 0; i < n_test; i++) {
            truth[i] = labels[test[i]];
            pred[i] = kvl_logreg_predict(&lr, X + (size_t)test[i] * dim);
            correct += truth[i] == pred[i];
        }
        kvl_logreg_free(&lr);
        double acc = (double)correct / n_test, f1 = macro_f1(truth, pred, n_test, n_class, counts);
        acc_s += acc, acc_ss += acc * acc, f1_s += f1, f1_ss += f1 * f1;
    }
    free(mem);
    if (st) return st;
    const double k = p.n_seeds;
    out->acc_mean = acc_s / k;
    out->f1_mean = f1_s / k;
    out->acc_std = sqrt(fmax(0, acc_ss / k - out->acc_mean * out->acc_mean));
    out->f1_std = sqrt(fmax(0, f1_ss / k - out->f1_mean * out->f1_mean));
    return KVL_OK;
}
