/* ops.h - the small vector operations of the forward pass (all f32). */
#ifndef KVL_OPS_H
#define KVL_OPS_H

float kvl_dot(const float *a, const float *b, int n);
/* y += a * x */
void kvl_axpy(float *y, float a, const float *x, int n);
/* out = x / sqrt(mean(x^2) + eps) * w  (out may alias x) */
void kvl_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* Rotary embedding in transformers' half-split order: pairs (i, i + hd/2) rotate by pos * inv_freq[i]. In two
 * steps, so a position's angles are computed once for all heads and layers: cs[hd] = cos of the hd/2 angles, then
 * their sin; kvl_rope_cs rotates x by them. */
void kvl_rope_table(float *cs, int hd, int pos, const float *inv_freq);
void kvl_rope_cs(float *x, int hd, const float *cs);
/* x = exp(x), vectorised where the CPU allows (within 2 ulp of expf) */
void kvl_exp_inplace(float *x, int n);
/* In place: x = softmax(x) over n entries. */
void kvl_softmax(float *x, int n);
/* gate = silu(gate) * up */
void kvl_swiglu(float *gate, const float *up, int n);
#endif
