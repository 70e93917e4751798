/* context.h - an inference context: the KV cache, optional hidden states, the logits of the last call, and the
 * activation buffers of the forward pass (sized for one micro-batch of up to `ub` tokens). */
#ifndef KVL_CONTEXT_H
#define KVL_CONTEXT_H
#include "cache/kvcache.h"
#include "model/model.h"

#define KVL_UBATCH 256 /* tokens per forward micro-batch: bounds activation memory for long prompts */

struct kvl_ctx {
    kvl_model *m;
    kvl_ctx_params p;
    int n_ctx;             /* capacity in positions */
    int n_pos;             /* positions filled */
    kvl_kvcache kv;
    float *hidden;         /* [L+1][n_ctx][H] when p.keep_hidden, else NULL */
    float *logits;         /* [n_logits][n_vocab] of the last kvl_eval */
    int n_logits;
    size_t logits_cap;     /* rows allocated */
    /* activations, [ub][...] */
    int ub;
    float *x;              /* [ub][H] residual stream */
    float *xn;             /* [ub][max(H, n_head*hd)] normed input / attention output */
    float *q;              /* [ub][n_head*hd] */
    float *k, *v;          /* [ub][n_kv*hd] */
    float *gate, *up;      /* [ub][n_ff] */
    float *att_scratch;    /* per thread: scores [n_ctx] + K and V rows [2][n_ctx][hd] for f16 caches */
    size_t att_stride;     /* floats per thread in att_scratch */
    /* prefill attention as matrix products, per KV head: */
    float *att_q;          /* [KVL_UBATCH][hd]  the query rows of one KV group (scaled) */
    float *att_s;          /* [KVL_UBATCH][n_ctx] scores, then probabilities */
    float *att_k;          /* [n_ctx][hd] K of one head as f32 (f16 caches) */
    float *att_v;          /* [n_ctx][hd] V of one head as f32 (f16 caches only) */
    float *att_vt;         /* [hd][n_ctx] V of one head, transposed */
    float *att_o;          /* [KVL_UBATCH][hd] */
    float *rope_cs;        /* [KVL_UBATCH][hd]: cos, then sin, of each micro-batch position's angles */
    int n_threads;
};
#endif
