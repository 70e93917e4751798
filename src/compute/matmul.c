/* Reference matmul: decode each weight row, dot with each token. Portable and slow; the fast kernels replace it. */
#include <stdlib.h>

#include "compute/matmul.h"
#include "compute/quant.h"

void kvl_weight_row(const kvl_weight *W, int64_t r, float *dst) {
    kvl_dequant_row(W->type, (const uint8_t *)W->data + r * W->row_bytes, dst, W->n_in);
}

void kvl_matmul(float *y, const float *x, const kvl_weight *W, int n_tok) {
    const int64_t n_in = W->n_in, n_out = W->n_out;
#pragma omp parallel
    {
        float *row = malloc(n_in * sizeof *row);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < n_out; o++) {
            kvl_weight_row(W, o, row);
            for (int t = 0; t < n_tok; t++) {
                const float *xt = x + (int64_t)t * n_in;
                double acc = 0;
                for (int64_t i = 0; i < n_in; i++) acc += (double)row[i] * xt[i];
                y[(int64_t)t * n_out + o] = (float)acc;
            }
        }
        free(row);
    }
}
