/* The probe's network and its optimiser (see mlp.h). Batches are small matrices: the forward pass is parallel over
 * rows, the weight gradient over hidden units, so no two threads write the same number. */
#include "think/mlp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

/* Below this many multiply-adds per batch the threads would only wait on each other. */
#define PAR_MIN_WORK (1L << 18)

size_t kvl_mlp_n_params(int F, int H) { return (size_t)H * F + 2 * (size_t)H + 1; }

void kvl_mlp_init(float *p, int F, int H, uint64_t seed) {
    uint64_t s = seed ^ 0x6D6C7070726F6265ull;
    const double b1 = 1.0 / sqrt((double)F), b2 = 1.0 / sqrt((double)H);
    const size_t nw1 = (size_t)H * F;
    for (size_t i = 0; i < nw1 + H; i++) p[i] = (float)((2 * kvl_rng_unit(&s) - 1) * b1); /* W1, b1 */
    for (size_t i = nw1 + H; i < nw1 + 2 * (size_t)H + 1; i++) p[i] = (float)((2 * kvl_rng_unit(&s) - 1) * b2);
}

/* Sixteen independent partial sums: a plain left-to-right float sum chains every add on the previous one, and the
 * compiler may not reorder it, so the probe check would cost a visible part of a small model's decode step. */
static float dot(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

float kvl_mlp_forward(const float *p, int F, int H, const float *x, float *z) {
    const float *W1 = p, *b1 = p + (size_t)H * F, *w2 = b1 + H, *b2 = w2 + H;
    double out = *b2;
    for (int j = 0; j < H; j++) {
        z[j] = b1[j] + dot(W1 + (size_t)j * F, x, F);
        if (z[j] > 0) out += (double)w2[j] * z[j];
    }
    return (float)out;
}

size_t kvl_mlp_work_size(int H, int B) { return (size_t)H * B + B; }

double kvl_mlp_loss_grad(const float *p, int F, int H, const float *X, const int *rows, const float *y, int B,
                         float *grad, float *work) {
    const float *W1 = p, *b1 = p + (size_t)H * F, *w2 = b1 + H, *b2 = w2 + H;
    float *Z = work, *g = Z + (size_t)B * H; /* pre-activations, dLoss/dout per row */
    const int par = (long)B * H * F >= PAR_MIN_WORK;
    double loss = 0;
#pragma omp parallel for if (par) reduction(+ : loss) schedule(static)
    for (int b = 0; b < B; b++) {
        const int r = rows ? rows[b] : b;
        const float *x = X + (size_t)r * F;
        float *z = Z + (size_t)b * H;
        double out = *b2;
        for (int j = 0; j < H; j++) {
            z[j] = b1[j] + dot(W1 + (size_t)j * F, x, F);
            if (z[j] > 0) out += (double)w2[j] * z[j];
        }
        double e = out - y[r];
        loss += e * e;
        g[b] = (float)(2.0 * e / B);
    }
    if (!grad) return loss / B;

    float *gW1 = grad, *gb1 = grad + (size_t)H * F, *gw2 = gb1 + H, *gb2 = gw2 + H;
    double sb2 = 0;
    for (int b = 0; b < B; b++) sb2 += g[b];
    *gb2 = (float)sb2;
#pragma omp parallel for if (par) schedule(static)
    for (int j = 0; j < H; j++) {
        double sw2 = 0, sb1 = 0;
        float *gw = gW1 + (size_t)j * F;
        memset(gw, 0, (size_t)F * sizeof *gw);
        for (int b = 0; b < B; b++) {
            const float z = Z[(size_t)b * H + j];
            if (z <= 0) continue; /* ReLU: no gradient through an inactive unit */
            sw2 += (double)g[b] * z;
            const float d = g[b] * w2[j];
            sb1 += d;
            const float *x = X + (size_t)(rows ? rows[b] : b) * F;
            for (int i = 0; i < F; i++) gw[i] += d * x[i];
        }
        gw2[j] = (float)sw2;
        gb1[j] = (float)sb1;
    }
    return loss / B;
}

int kvl_adam_init(kvl_adam *a, size_t n, double lr) {
    memset(a, 0, sizeof *a);
    a->lr = lr;
    a->beta1 = 0.9;
    a->beta2 = 0.999;
    a->eps = 1e-8;
    a->m = calloc(n ? n : 1, sizeof *a->m);
    a->v = calloc(n ? n : 1, sizeof *a->v);
    if (!a->m || !a->v) {
        kvl_adam_free(a);
        return -1;
    }
    return 0;
}

void kvl_adam_free(kvl_adam *a) {
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
}

void kvl_adam_step(kvl_adam *a, float *p, const float *g, size_t n) {
    a->t++;
    const double c1 = 1 - pow(a->beta1, (double)a->t), c2 = 1 - pow(a->beta2, (double)a->t);
    const float b1 = (float)a->beta1, b2 = (float)a->beta2, step = (float)(a->lr / c1), eps = (float)a->eps;
    const float rc2 = (float)(1.0 / sqrt(c2));
    for (size_t i = 0; i < n; i++) {
        a->m[i] = b1 * a->m[i] + (1 - b1) * g[i];
        a->v[i] = b2 * a->v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step * a->m[i] / (sqrtf(a->v[i]) * rc2 + eps);
    }
}
