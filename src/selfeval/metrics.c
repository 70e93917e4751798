/* Self-evaluation metrics with "correct" as the positive class: AUROC (the Mann-Whitney statistic, ties counting
 * one half), FPR95 (linear interpolation along the ROC curve), AUPR (average precision), the ROC curve itself, and
 * percentile bootstrap intervals. All in percent except the curve. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvlens.h"
#include "util/error.h"
#include "util/rng.h"

typedef struct {
    double s;
    bool y;
} item;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const item *)a)->s, y = ((const item *)b)->s;
    return x < y ? 1 : x > y ? -1 : 0;
}

static kvl_status check(const double *score, const bool *correct, int n) {
    if (!score || !correct) return kvl_fail(KVL_ERR_ARG, "metrics: NULL argument");
    if (n < 1) return kvl_fail(KVL_ERR_ARG, "metrics need at least one answer (got %d)", n);
    for (int i = 0; i < n; i++)
        if (!isfinite(score[i])) return kvl_fail(KVL_ERR_ARG, "score %d is not a finite number", i);
    return KVL_OK;
}

/* Metrics of items already sorted by descending score; P positives, N negatives, both > 0. One pass over the
 * groups of equal scores: each group is one ROC point. */
static void sorted_metrics(const item *it, int n, int P, int N, kvl_selfeval_metrics *m) {
    long tp = 0, fp = 0;
    double auc = 0, ap = 0, fpr95 = -1;
    for (int i = 0; i < n;) {
        long tp0 = tp, fp0 = fp;
        int j = i;
        for (; j < n && it[j].s == it[i].s; j++) {
            if (it[j].y) tp++;
            else fp++;
        }
        /* trapezoid of this segment (a diagonal one for a tie between classes): the Mann-Whitney count with ties
         * as one half, over P * N */
        auc += (double)(fp - fp0) * (tp + tp0) / 2.0;
        if (tp > tp0) ap += (double)(tp - tp0) / P * ((double)tp / (tp + fp));
        if (fpr95 < 0 && 20 * tp >= 19L * P) { /* tpr >= 0.95, exactly in integers */
            double f = (0.95 * P - tp0) / (double)(tp - tp0);
            if (f < 0) f = 0;
            fpr95 = ((double)fp0 + f * (fp - fp0)) / N;
        }
        i = j;
    }
    m->auroc = 100.0 * auc / ((double)P * N);
    m->aupr = 100.0 * ap;
    m->fpr95 = 100.0 * fpr95;
}

static void metrics_of_items(item *it, int n, kvl_selfeval_metrics *m) {
    int P = 0;
    for (int i = 0; i < n; i++) P += it[i].y;
    memset(m, 0, sizeof *m);
    m->n = n;
    m->n_pos = P;
    if (P == 0 || P == n) { /* one class: the values of a chance-level scorer */
        m->single_class = true;
        m->auroc = 50;
        m->fpr95 = 95;
        m->aupr = 100.0 * P / n;
        return;
    }
    qsort(it, n, sizeof *it, by_score_desc);
    sorted_metrics(it, n, P, n - P, m);
}

kvl_status kvl_selfeval_metrics_of(const double *score, const bool *correct, int n, kvl_selfeval_metrics *out) {
    if (!out) return kvl_fail(KVL_ERR_ARG, "metrics: NULL argument");
    KVL_TRY(check(score, correct, n));
    item *it = malloc((size_t)n * sizeof *it);
    if (!it) return kvl_fail(KVL_ERR_NOMEM, "out of memory for metrics of %d answers", n);
    for (int i = 0; i < n; i++) it[i] = (item){score[i], correct[i]};
    metrics_of_items(it, n, out);
    free(it);
    return KVL_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Quantile q of sorted v[0..n) with linear interpolation between order statistics. */
static double quantile(const double *v, int n, double q) {
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

kvl_status kvl_selfeval_bootstrap(const double *score, const bool *correct, int n, int n_boot, uint64_t seed,
                                  double level, kvl_selfeval_metrics *lo, kvl_selfeval_metrics *hi, int *n_used) {
    if (!lo || !hi) return kvl_fail(KVL_ERR_ARG, "bootstrap: NULL argument");
    KVL_TRY(check(score, correct, n));
    if (n_boot < 1) return kvl_fail(KVL_ERR_ARG, "bootstrap needs at least one resample (got %d)", n_boot);
    if (!(level > 0 && level < 1)) return kvl_fail(KVL_ERR_ARG, "confidence level %g is not in (0, 1)", level);
    kvl_selfeval_metrics point;
    KVL_TRY(kvl_selfeval_metrics_of(score, correct, n, &point));
    item *it = malloc((size_t)n * sizeof *it);
    double *v = malloc(3 * (size_t)n_boot * sizeof *v);
    if (!it || !v) {
        free(it);
        free(v);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for %d bootstrap resamples", n_boot);
    }
    double *au = v, *fp = v + n_boot, *pr = v + 2 * n_boot;
    uint64_t rng = seed;
    int k = 0;
    for (int b = 0; b < n_boot; b++) {
        for (int i = 0; i < n; i++) {
            int j = kvl_rng_below(&rng, n);
            it[i] = (item){score[j], correct[j]};
        }
        kvl_selfeval_metrics m;
        metrics_of_items(it, n, &m);
        if (m.single_class) continue;
        au[k] = m.auroc, fp[k] = m.fpr95, pr[k] = m.aupr;
        k++;
    }
    *lo = *hi = point;
    if (k > 0) {
        double ql = (1 - level) / 2, qh = (1 + level) / 2;
        double *arr[3] = {au, fp, pr};
        double *lo_f[3] = {&lo->auroc, &lo->fpr95, &lo->aupr}, *hi_f[3] = {&hi->auroc, &hi->fpr95, &hi->aupr};
        for (int a = 0; a < 3; a++) {
            qsort(arr[a], k, sizeof *arr[a], cmp_double);
            *lo_f[a] = quantile(arr[a], k, ql);
            *hi_f[a] = quantile(arr[a], k, qh);
        }
    }
    if (n_used) *n_used = k;
    free(it);
    free(v);
    return KVL_OK;
}

kvl_status kvl_roc_curve(const double *score, const bool *correct, int n, double **fpr, double **tpr, int *n_pts) {
    if (!fpr || !tpr || !n_pts) return kvl_fail(KVL_ERR_ARG, "kvl_roc_curve: NULL argument");
    *fpr = *tpr = NULL;
    KVL_TRY(check(score, correct, n));
    int P = 0;
    for (int i = 0; i < n; i++) P += correct[i];
    if (P == 0 || P == n)
        return kvl_fail(KVL_ERR_ARG, "a ROC curve needs correct and incorrect answers (%d of %d correct)", P, n);
    item *it = malloc((size_t)n * sizeof *it);
    double *f = malloc(2 * ((size_t)n + 1) * sizeof *f);
    if (!it || !f) {
        free(it);
        free(f);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for a ROC curve of %d answers", n);
    }
    for (int i = 0; i < n; i++) it[i] = (item){score[i], correct[i]};
    qsort(it, n, sizeof *it, by_score_desc);
    double *t = f + n + 1;
    long tp = 0, fp = 0;
    int k = 0;
    f[k] = t[k] = 0, k++;
    for (int i = 0; i < n;) {
        int j = i;
        for (; j < n && it[j].s == it[i].s; j++) {
            if (it[j].y) tp++;
            else fp++;
        }
        f[k] = (double)fp / (n - P), t[k] = (double)tp / P, k++;
        i = j;
    }
    free(it);
    double *tt = malloc((size_t)k * sizeof *tt);
    if (!tt) {
        free(f);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory for a ROC curve");
    }
    memcpy(tt, t, k * sizeof *tt);
    *fpr = f;
    *tpr = tt;
    *n_pts = k;
    return KVL_OK;
}
