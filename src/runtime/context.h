/* context.h - a context as the runtime keeps it: the chosen backend and its state, the filled positions of every
 * sequence slot, the views handed to the features, and the logits of the last decode. Only src/runtime includes
 * this; features see a context through kvlens.h (kvl_view). */
#ifndef KVL_RUNTIME_CONTEXT_H
#define KVL_RUNTIME_CONTEXT_H
#include "backend/backend.h"
#include "model/model.h"

#define KVL_UBATCH 256 /* rows per forward micro-batch: bounds activation memory for long prompts */

struct kvl_view {
    const struct kvl_ctx *c;
    int seq;
};

struct kvl_ctx {
    kvl_model *m;
    kvl_ctx_params p;
    int n_ctx;             /* positions per sequence */
    int n_seq;             /* sequence slots */
    const kvl_backend *be;
    void *st;              /* the backend's state */
    int *n_pos;            /* [n_seq] positions filled */
    kvl_view *views;       /* [n_seq] */
    float *logits;         /* [n_logits][n_vocab] of the last decode */
    int n_logits;
    size_t logits_cap;     /* rows allocated */
    int *row_logits;       /* [rows_cap] row of the last decode -> its logits row, or -1 */
    int n_rows, rows_cap;
    kvl_batch one;         /* kvl_eval's batch */
};
#endif
