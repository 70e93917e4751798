/* cpu.h - the CPU backend's context state: one KV cache per sequence slot in transformers' layout, optional hidden
 * states, and the activation buffers of the forward pass (sized for one micro-batch of up to `ub` rows). */
#ifndef KVL_BACKEND_CPU_H
#define KVL_BACKEND_CPU_H
#include "backend/backend.h"
#include "cache/kvcache.h"
#include "model/model.h"

typedef struct {
    const kvl_model *m;
    kvl_backend_config cfg;
    int n_ctx;             /* positions per sequence */
    int n_threads;
    kvl_kvcache *kv;       /* [n_seq] */
    float **hidden;        /* [n_seq] -> [L+1][n_ctx][H] when keep_hidden, else NULL */
    /* activations, [ub][...] */
    int ub;
    float *x;              /* [ub][H] residual stream */
    float *xn;             /* [ub][max(H, n_head*hd)] normed input / attention output */
    float *q;              /* [ub][n_head*hd] */
    float *k, *v;          /* [ub][n_kv*hd] */
    float *gate, *up;      /* [ub][n_ff] */
    float *att_scratch;    /* per thread: scores [n_ctx] + K and V rows [2][n_ctx][hd] for f16 caches */
    size_t att_stride;     /* floats per thread in att_scratch */
    /* prompt attention as matrix products, per KV head: */
    float *att_q;          /* [ub][hd]  the query rows of one KV group (scaled) */
    float *att_s;          /* [ub][n_ctx] scores, then probabilities */
    float *att_k;          /* [n_ctx][hd] K of one head as f32 (f16 caches) */
    float *att_v;          /* [n_ctx][hd] V of one head as f32 (f16 caches only) */
    float *att_vt;         /* [hd][n_ctx] V of one head, transposed */
    float *att_o;          /* [ub][hd] */
    float *rope_cs;        /* [ub][hd]: cos, then sin, of each row's angles */
    int *runs;             /* [ub+1] starts of the runs of rows (one sequence, consecutive positions) */
    int *short_rows;       /* [ub] rows whose attention runs row by row */
} kvl_cpu_state;

/* The forward pass of one micro-batch (forward.c). */
kvl_status kvl_cpu_decode(void *state, const kvl_ubatch *ub, float *logits);
#endif
