/* ops.h - the small vector operations of the forward pass (all f32). */
#ifndef KVL_OPS_H
#define KVL_OPS_H

float kvl_dot(const float *a, const float *b, int n);
/* y += a * x */
void kvl_axpy(float *y, float a, const float *x, int n);
/* out = x / sqrt(mean(x^2) + eps) * w  (out may alias x) */
void kvl_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* Rotary embedding in transformers' half-split order: pairs (i, i + hd/2) rotate by pos * inv_freq[i]. */
void kvl_rope(float *x, int hd, int pos, const float *inv_freq);
/* In place: x = softmax(x) over n entries. */
void kvl_softmax(float *x, int n);
/* gate = silu(gate) * up */
void kvl_swiglu(float *gate, const float *up, int n);
#endif
