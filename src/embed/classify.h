/* classify.h - the pieces of the classification protocol (src/embed/classify.c), exposed for tests. */
#ifndef KVL_CLASSIFY_H
#define KVL_CLASSIFY_H
#include <stdint.h>

#include "kvlens.h"

/* Macro-F1 over the labels that occur in truth or pred (each in 0..n_class-1). */
double kvl_macro_f1(const int *truth, const int *pred, int n, int n_class);
/* Seeded stratified split of rows 0..n-1: per class of n_c rows, round(frac * n_c) go to test, clamped to
 * [1, n_c - 1] (a class of one row stays in train). train and test have room for n rows each. */
kvl_status kvl_stratified_split(const int *labels, int n, int n_class, double frac, uint64_t seed, int *train,
                                int *n_train, int *test, int *n_test);
#endif
