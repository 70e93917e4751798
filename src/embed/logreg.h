/* logreg.h - multinomial logistic regression for the embedding evaluation: minimises
 *     mean cross-entropy + ||W||^2 / (2 C n)       (intercepts unpenalised)
 * which has the minimiser of scikit-learn's LogisticRegression(C) objective 0.5 ||W||^2 + C * sum of losses,
 * with L-BFGS. Rows are addressed through an index list so splits need no copies of the data. */
#ifndef KVL_LOGREG_H
#define KVL_LOGREG_H
#include "kvlens.h"

typedef struct {
    int dim, n_class;
    double *w;  /* [n_class][dim + 1]: weights, then the intercept */
} kvl_logreg;

/* Objective at w over rows[0..n) of X ([*][dim]) with labels y (indexed like X); grad (same shape as w) if
 * not NULL. */
double kvl_logreg_objective(const double *w, const float *X, int dim, const int *y, int n_class, const int *rows,
                            int n, double C, double *grad);
/* Fit on rows[0..n) of X; labels in 0..n_class-1. Returns the iterations used through *iters (may be NULL). */
kvl_status kvl_logreg_fit(kvl_logreg *m, const float *X, int dim, const int *y, int n_class, const int *rows, int n,
                          double C, int max_iter, int *iters);
/* The class with the highest score (ties: the lowest index). */
int kvl_logreg_predict(const kvl_logreg *m, const float *x);
void kvl_logreg_free(kvl_logreg *m);
#endif
