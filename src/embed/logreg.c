/* Multinomial logistic regression trained with L-BFGS (two-loop recursion, Armijo backtracking). The objective is
 * smooth and strongly convex (the L2 term), so this converges to the unique minimiser from zero. */
#include "embed/logreg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define LBFGS_M 10          /* correction pairs kept */
#define GRAD_TOL 1e-6       /* stop when every gradient component is this small */

double kvl_logreg_objective(const double *w, const float *X, int dim, const int *y, int n_class, const int *rows,
                            int n, double C, double *grad) {
    const int D = dim + 1;
    double *z = malloc(n_class * sizeof *z);
    if (!z) return NAN;
    if (grad) memset(grad, 0, (size_t)n_class * D * sizeof *grad);
    double loss = 0;
    for (int r = 0; r < n; r++) {
        const float *x = X + (size_t)rows[r] * dim;
        double mx = -INFINITY;
        for (int k = 0; k < n_class; k++) {
            const double *wk = w + (size_t)k * D;
            double s = wk[dim];
            for (int i = 0; i < dim; i++) s += wk[i] * x[i];
            z[k] = s;
            if (s > mx) mx = s;
        }
        double se = 0;
        for (int k = 0; k < n_class; k++) se += exp(z[k] - mx);
        const double lse = mx + log(se);
        const int yr = y[rows[r]];
        loss += lse - z[yr];
        if (!grad) continue;
        for (int k = 0; k < n_class; k++) {
            double p = exp(z[k] - lse) - (k == yr);
            double *gk = grad + (size_t)k * D;
            for (int i = 0; i < dim; i++) gk[i] += p * x[i];
            gk[dim] += p;
        }
    }
    free(z);
    const double lam = 1.0 / (C * n);
    double reg = 0;
    for (int k = 0; k < n_class; k++)
        for (int i = 0; i < dim; i++) {
            double wi = w[(size_t)k * D + i];
            reg += wi * wi;
            if (grad) grad[(size_t)k * D + i] = grad[(size_t)k * D + i] / n + lam * wi;
        }
    if (grad)
        for (int k = 0; k < n_class; k++) grad[(size_t)k * D + dim] /= n;
    return loss / n + 0.5 * lam * reg;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

kvl_status kvl_logreg_fit(kvl_logreg *m, const float *X, int dim, const int *y, int n_class, const int *rows, int n,
                          double C, int max_iter, int *iters) {
    memset(m, 0, sizeof *m);
    if (dim <= 0 || n_class < 2 || n <= 0 || !(C > 0))
        return kvl_fail(KVL_ERR_ARG, "logistic regression needs rows, features, two classes and C > 0");
    const size_t N = (size_t)n_class * (dim + 1);
    /* x, g, trial x and g, direction, then the correction pairs */
    double *buf = calloc(N * (5 + 2 * LBFGS_M), sizeof *buf);
    if (!buf) return kvl_fail(KVL_ERR_NOMEM, "out of memory training a %d-class classifier on %d features", n_class, dim);
    double *x = buf, *g = x + N, *xt = g + N, *gt = xt + N, *d = gt + N, *S = d + N, *Y = S + N * LBFGS_M;
    double rho[LBFGS_M], alpha[LBFGS_M];
    int n_pairs = 0, newest = -1, it = 0;
    double f = kvl_logreg_objective(x, X, dim, y, n_class, rows, n, C, g);
    for (; it < max_iter && max_abs(g, N) > GRAD_TOL; it++) {
        /* d = -H g by the two-loop recursion over the stored pairs, newest first */
        memcpy(d, g, N * sizeof *d);
        for (int j = 0; j < n_pairs; j++) {
            int i = (newest - j + LBFGS_M) % LBFGS_M;
            alpha[i] = rho[i] * dot(S + i * N, d, N);
            for (size_t q = 0; q < N; q++) d[q] -= alpha[i] * Y[i * N + q];
        }
        double gamma = n_pairs ? dot(S + newest * N, Y + newest * N, N) / dot(Y + newest * N, Y + newest * N, N)
                               : 1.0 / sqrt(dot(g, g, N)); /* first step: unit length */
        for (size_t q = 0; q < N; q++) d[q] *= gamma;
        for (int j = n_pairs - 1; j >= 0; j--) {
            int i = (newest - j + LBFGS_M) % LBFGS_M;
            double beta = rho[i] * dot(Y + i * N, d, N);
            for (size_t q = 0; q < N; q++) d[q] += (alpha[i] - beta) * S[i * N + q];
        }
        for (size_t q = 0; q < N; q++) d[q] = -d[q];
        double gd = dot(g, d, N);
        if (!(gd < 0)) { /* not a descent direction (numerical trouble): restart from steepest descent */
            n_pairs = 0;
            for (size_t q = 0; q < N; q++) d[q] = -g[q] / sqrt(dot(g, g, N));
            gd = dot(g, d, N);
        }
        double step = 1, ft = 0;
        int ok = 0;
        for (int k = 0; k < 50; k++, step *= 0.5) {
            for (size_t q = 0; q < N; q++) xt[q] = x[q] + step * d[q];
            ft = kvl_logreg_objective(xt, X, dim, y, n_class, rows, n, C, gt);
            if (ft <= f + 1e-4 * step * gd) {
                ok = 1;
                break;
            }
        }
        if (!ok) break; /* no decrease possible at double precision: converged as far as it goes */
        int slot = (newest + 1) % LBFGS_M;
        double *s = S + slot * N, *yv = Y + slot * N;
        for (size_t q = 0; q < N; q++) s[q] = xt[q] - x[q], yv[q] = gt[q] - g[q];
        double sy = dot(s, yv, N);
        if (sy > 1e-12 * dot(yv, yv, N)) { /* keep only pairs with positive curvature */
            rho[slot] = 1.0 / sy;
            newest = slot;
            if (n_pairs < LBFGS_M) n_pairs++;
        }
        double f_old = f;
        memcpy(x, xt, N * sizeof *x);
        memcpy(g, gt, N * sizeof *g);
        f = ft;
        if (f_old - f <= 1e-12 * fmax(1.0, fabs(f))) {
            it++;
            break;
        }
    }
    m->dim = dim;
    m->n_class = n_class;
    m->w = malloc(N * sizeof *m->w);
    if (!m->w) {
        free(buf);
        return kvl_fail(KVL_ERR_NOMEM, "out of memory");
    }
    memcpy(m->w, x, N * sizeof *x);
    free(buf);
    if (iters) *iters = it;
    return KVL_OK;
}

int kvl_logreg_predict(const kvl_logreg *m, const float *x) {
    int best = 0;
    double bs = -INFINITY;
    for (int k = 0; k < m->n_class; k++) {
        const double *wk = m->w + (size_t)k * (m->dim + 1);
        double s = wk[m->dim];
        for (int i = 0; i < m->dim; i++) s += wk[i] * x[i];
        if (s > bs) bs = s, best = k;
    }
    return best;
}

void kvl_logreg_free(kvl_logreg *m) {
    free(m->w);
    m->w = NULL;
}
