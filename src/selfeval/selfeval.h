/* selfeval.h - internals shared by the self-evaluation files: a trajectory whose CoE scores are accumulated one
 * vector at a time, so that the token-axis trajectory of a long answer is never stored. */
#ifndef KVL_SELFEVAL_H
#define KVL_SELFEVAL_H
#include "kvlens.h"

typedef struct {
    int dim, n, cap;       /* vectors pushed; capacity of the step arrays */
    unsigned warn;
    double *x0, *prev;     /* [dim] each: the first and the latest vector */
    double norm0, norm_prev;
    double *len, *ang;     /* [cap] per step: ||x_{i+1} - x_i|| and angle(x_{i+1}, x_i) */
} kvl_coe_stream;

kvl_status kvl_coe_stream_init(kvl_coe_stream *s, int dim);
kvl_status kvl_coe_stream_push(kvl_coe_stream *s, const double *x);
kvl_coe kvl_coe_stream_finish(const kvl_coe_stream *s);
void kvl_coe_stream_free(kvl_coe_stream *s);

/* The token-axis KV-CoE of positions [t0, t1) (valid) over the resolved layers sel[0..n_sel), streamed. */
kvl_status kvl_kv_token_coe(const kvl_view *v, const int *sel, int n_sel, int t0, int t1, kvl_coe *out);
#endif
