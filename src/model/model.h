/* model.h - a loaded model: hyperparameters and weight handles (pointers into the GGUF mapping, or into memory for
 * random benchmark models). Nothing here knows how weights are multiplied: that is compute/matmul.h. */
#ifndef KVL_MODEL_H
#define KVL_MODEL_H
#include "compute/matmul.h"
#include "gguf/gguf.h"
#include "kvlens.h"

typedef struct {
    const float *attn_norm;           /* [H] */
    kvl_weight wq, wk, wv, wo;        /* [n_head*hd][H], [n_kv*hd][H], [n_kv*hd][H], [H][n_head*hd] */
    const float *bq, *bk, *bv;        /* qwen2 biases, or NULL */
    const float *q_norm, *k_norm;     /* qwen3 per-head RMSNorm weights [hd], or NULL */
    const float *ffn_norm;            /* [H] */
    kvl_weight w_gate, w_up, w_down;  /* [n_ff][H], [n_ff][H], [H][n_ff] */
} kvl_layer;

struct kvl_model {
    kvl_hparams hp;
    kvl_gguf *gguf;                   /* owns the mapping (NULL for random models) */
    kvl_weight tok_embd;              /* [n_vocab][H] */
    kvl_weight output;                /* [n_vocab][H] (== tok_embd when tied) */
    const float *output_norm;         /* [H] */
    kvl_layer *layers;                /* [n_layer] */
    float *inv_freq;                  /* [hd/2] RoPE inverse frequencies, llama3 factors applied */
    int qk_interleaved;               /* llama GGUF: Q/K rows permuted to interleaved rotary pairs */
    int32_t *eog;                     /* end-of-generation token ids */
    int n_eog;
    void **owned;                     /* allocations freed with the model */
    int n_owned, cap_owned;
    struct kvl_tokenizer *tok;        /* NULL when the file has no (usable) tokenizer */
    char tok_error[256];              /* why tok is NULL */
    /* a backend's own copy of the weights (runtime/context.c uploads it once; freed with the model) */
    const void *be_weights_owner;     /* the kvl_backend it belongs to, or NULL */
    void *be_weights;
    void (*be_weights_free)(void *);
};

/* Keep p alive until kvl_model_free (returns p, or NULL on failure after freeing it). */
void *kvl_model_own(kvl_model *m, void *p);
/* Fill the derived parts shared by file and random models: inverse RoPE frequencies. */
kvl_status kvl_model_finish(kvl_model *m, const float *rope_factors);
#endif
