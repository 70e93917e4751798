/* mlp.h - the probe's network: Linear(F, H) -> ReLU -> Linear(H, 1), its mean-squared-error gradient and Adam.
 *
 * All parameters live in one float array p of kvl_mlp_n_params(F, H) numbers, laid out [W1 (H rows of F) | b1 (H)
 * | w2 (H) | b2 (1)], so that the optimiser and the finite-difference test see a flat vector. */
#ifndef KVL_THINK_MLP_H
#define KVL_THINK_MLP_H
#include <stddef.h>
#include <stdint.h>

size_t kvl_mlp_n_params(int F, int H);
/* PyTorch's default Linear initialisation: weights and biases uniform in +-1/sqrt(fan_in). */
void kvl_mlp_init(float *p, int F, int H, uint64_t seed);
/* Output for one input x[F]; z is scratch of H floats. */
float kvl_mlp_forward(const float *p, int F, int H, const float *x, float *z);
/* Scratch floats kvl_mlp_loss_grad needs for a batch of B rows. */
size_t kvl_mlp_work_size(int H, int B);
/* Mean over the B rows of X [B][F] of (out - y)^2; with grad != NULL also its gradient with respect to p
 * (overwritten, kvl_mlp_n_params floats). rows: NULL, or the indices of X's rows to use (a mini-batch). */
double kvl_mlp_loss_grad(const float *p, int F, int H, const float *X, const int *rows, const float *y, int B,
                         float *grad, float *work);

typedef struct {
    double lr, beta1, beta2, eps;
    long t;                 /* steps taken */
    float *m, *v;           /* first and second moments, one per parameter */
} kvl_adam;

/* Moments allocated and zeroed for n parameters; 0 on success. */
int kvl_adam_init(kvl_adam *a, size_t n, double lr);
void kvl_adam_free(kvl_adam *a);
/* One Adam step (Kingma and Ba, with bias correction) on p[0..n) with gradient g. */
void kvl_adam_step(kvl_adam *a, float *p, const float *g, size_t n);
#endif
